// Deployment timings for `npm run bench`, each on freshly booted lab hosts: `pulumi up` of a new
// stack, the hand-written baseline (scripts/hand-deploy.sh), and a `pulumi up` that changes
// nothing, with the SSH sessions each host saw meanwhile. Needs scripts/env.sh's environment.
import { execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { labHosts } from "../../lab/hosts";

const ROOT = path.resolve(__dirname, "..", "..");

function run(cmd: string, args: string[], env: Record<string, string> = {}): string {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
}

/** Seconds `fn` took. */
function timed(fn: () => unknown): number {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
}

export class LabDeploys {
    constructor(private readonly hosts: number) {}

    private lab = (...args: string[]) => run("bash", ["lab/lab.sh", ...args], { LAB_HOSTS: String(this.hosts) });

    /** Brand-new hosts: the lab torn down and booted again. */
    fresh(): void {
        this.lab("down");
        this.lab("up");
    }


    /** scripts/hand-deploy.sh onto fresh hosts; the proxy on the first two, as the lab stack has it. */
    hand(): number {
        this.fresh();
        const ips = labHosts(this.hosts).map((h) => h.ip);
        const env = {
            HOSTS: ips.join(" "),
            PROXY_HOSTS: ips.slice(0, 2).join(" "),
            WRITE_VIP: `${ips[0].split(".").slice(0, 3).join(".")}.100`,
            SSH_KEY: this.lab("key").trim(),
            BENCH_PASSWORD: randomBytes(18).toString("base64url"),
        };
        return timed(() => run("bash", ["scripts/hand-deploy.sh"], env));
    }

    /** `pulumi up` of a new stack onto fresh hosts (the stack's configuration is set beforehand, with `config`'s paths). */
    pulumiFresh(stack: string, config: Record<string, string> = {}): number {
        this.fresh();
        this.forget(stack);
        this.stacks.add(stack);
        return this.pulumiUp(stack, true, config);
    }

    /** The stacks pulumiFresh made: down() forgets them with the hosts they described. */
    private readonly stacks = new Set<string>();

    /** Removes the stack from the backend, and its configuration file, without touching hosts. */
    private forget(stack: string): void {
        try {
            run("pulumi", ["stack", "rm", "--yes", "--force", "--stack", stack]);
        } catch {
            // there was no such stack
        }
        fs.rmSync(path.join(ROOT, `Pulumi.${stack}.yaml`), { force: true });
    }

    /** `pulumi up` of the stack as it is; with `configure`, after scripts/lab-stack.sh set it up. */
    pulumiUp(stack: string, configure = false, config: Record<string, string> = {}): number {
        if (configure) run("bash", ["scripts/lab-stack.sh", stack], { LAB_HOSTS: String(this.hosts) });
        for (const [key, value] of Object.entries(config)) run("pulumi", ["config", "set", "--stack", stack, "--path", key, value]);
        return timed(() => run("pulumi", ["up", "--yes", "--skip-preview", "--stack", stack]));
    }

    /** SSH sessions each host has accepted so far (sshd's journal); this question is one of them. */
    sshSessions(): number {
        return labHosts(this.hosts).reduce((sum, h) => sum + Number(this.lab("ssh", h.name, "journalctl -q -u ssh --no-pager | grep -c 'Accepted publickey' || true").trim()), 0);
    }

    /** A no-op `pulumi up`: its seconds and the SSH sessions it opened. */
    noop(stack: string): { seconds: number; sshSessions: number } {
        const before = this.sshSessions();
        const seconds = this.pulumiUp(stack);
        // Each count itself opened one session per host.
        return { seconds, sshSessions: this.sshSessions() - before - this.hosts };
    }

    /** Tears the lab down, and forgets the stacks that described its hosts. */
    down(): void {
        this.lab("down");
        for (const stack of this.stacks) this.forget(stack);
        this.stacks.clear();
    }
}
