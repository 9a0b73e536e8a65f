// The lab seen from TypeScript (tests, the failover drill): its hosts, SSH into them, and the
// chaos verbs of lab/lab.sh.
import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const LAB = path.join(__dirname, "lab.sh");

export interface LabHost {
    name: string;
    ip: string;
}

/** The lab's hosts: LAB_HOSTS of them, or `count`. */
export function labHosts(count?: number): LabHost[] {
    const env = count === undefined ? process.env : { ...process.env, LAB_HOSTS: String(count) };
    return execFileSync("bash", [LAB, "hosts"], { encoding: "utf8", env })
        .trim()
        .split("\n")
        .map((l) => {
            const [name, ip] = l.split(/\s+/);
            return { name, ip };
        });
}

/** Runs a shell command on a lab host as root and returns its stdout. */
export function onHost(host: string, command: string, input?: string): string {
    return execFileSync("bash", [LAB, "ssh", host, command], { encoding: "utf8", input });
}

/** Runs a lab verb (poweroff, start, cut, restore …). */
export function lab(...args: string[]): string {
    return execFileSync("bash", [LAB, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
}

/**
 * `lab` or `onHost` without blocking the event loop: a fault injected while clients run must not
 * freeze them (a power-off's clean-up takes over a second after the host is already dead).
 */
export function labAsync(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) =>
        execFile("bash", [LAB, ...args], { encoding: "utf8" }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
}

export function labKey(): string {
    return fs.readFileSync(execFileSync("bash", [LAB, "key"], { encoding: "utf8" }).trim(), "utf8");
}
