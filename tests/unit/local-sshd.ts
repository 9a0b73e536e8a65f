// A throwaway OpenSSH server on 127.0.0.1 for tests: its own config, host keys, authorized key
// and pid file in a temporary directory; started as a child process (sshd -D -e), never as the
// system service. Its log (LogLevel DEBUG1, on stderr) is kept, so tests can tell how far a
// client got. Needs /usr/sbin/sshd and root (sshd's privilege separation); start() says why not.
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort } from "./loopback";

const SSHD = "/usr/sbin/sshd";

/** Generates a key pair without passphrase; returns the private key's path. */
export function keygen(dir: string, name: string, type: "ed25519" | "ecdsa" | "rsa"): string {
    const file = path.join(dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-C", name, "-f", file]);
    return file;
}

/** The fingerprint of a key file as `ssh-keygen -lf` prints it. */
export function sshKeygenFingerprint(file: string): string {
    return execFileSync("ssh-keygen", ["-lf", file], { encoding: "utf8" }).split(/\s+/)[1];
}

export class LocalSshd {
    readonly dir: string;
    port = 0;
    /** The client's private key (OpenSSH format), authorized for root. */
    readonly clientKey: string;
    private child?: ChildProcess;
    private logText = "";

    private constructor(dir: string) {
        this.dir = dir;
        this.clientKey = fs.readFileSync(keygen(dir, "client", "ed25519"), "utf8");
        fs.copyFileSync(path.join(dir, "client.pub"), path.join(dir, "authorized_keys"));
    }

    /** Why no local sshd can run here, or undefined when it can. */
    static unavailable(): string | undefined {
        if (!fs.existsSync(SSHD)) return `${SSHD} is missing (apt-get install openssh-server)`;
        if (process.getuid?.() !== 0) return "sshd needs root for its privilege separation";
        try {
            execFileSync("ssh-keygen", ["-?"], { stdio: "ignore" });
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "ENOENT") return "ssh-keygen is missing";
        }
        return undefined;
    }

    /** Starts an sshd presenting the given host keys (private key paths). */
    static async start(hostKeys: (dir: string) => string[]): Promise<LocalSshd> {
        const sshd = new LocalSshd(fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-sshd-")));
        sshd.port = await freePort();
        await sshd.launch(hostKeys(sshd.dir));
        return sshd;
    }

    /** Everything sshd logged so far; `log().length` marks a point to look from. */
    log(from = 0): string {
        return this.logText.slice(from);
    }

    /** Stops sshd (if it runs) and starts it again on the same port with these host keys. */
    async restart(hostKeys: string[]): Promise<void> {
        await this.halt();
        await this.launch(hostKeys);
    }

    /** Stops sshd and removes its directory. */
    async stop(): Promise<void> {
        await this.halt();
        fs.rmSync(this.dir, { recursive: true, force: true });
    }

    private async launch(hostKeys: string[]): Promise<void> {
        // sshd refuses to start without its privilege separation directory (the package's
        // service creates it; we do not run that service).
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
        const config = path.join(this.dir, "sshd_config");
        fs.writeFileSync(
            config,
            [
                "ListenAddress 127.0.0.1",
                `Port ${this.port}`,
                ...hostKeys.map((k) => `HostKey ${k}`),
                `AuthorizedKeysFile ${path.join(this.dir, "authorized_keys")}`,
                `PidFile ${path.join(this.dir, "sshd.pid")}`,
                "StrictModes no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "LogLevel DEBUG1",
                "",
            ].join("\n"),
        );
        const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
        this.child = child;
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`sshd did not start within 10 s:\n${this.logText}`)), 10000);
            child.stderr!.on("data", (d: Buffer) => {
                this.logText += d.toString();
                if (/Server listening on 127\.0\.0\.1 port/.test(this.logText)) {
                    clearTimeout(timer);
                    resolve();
                }
            });
            child.once("exit", (code) => {
                clearTimeout(timer);
                reject(new Error(`sshd exited with ${code}:\n${this.logText}`));
            });
        });
    }

    /**
     * Stops sshd, keeping its directory (restart() brings it back). Its open sessions end too, as
     * when a server goes down: sshd's per-connection processes outlive the listener otherwise, and
     * a client that keeps connections open would go on using them.
     */
    async halt(): Promise<void> {
        const child = this.child;
        this.child = undefined;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        spawnSync("pkill", ["-TERM", "-P", String(child.pid)]);
        child.kill("SIGTERM");
        await exited;
    }
}
