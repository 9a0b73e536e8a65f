// For unit tests that run real programs (sshd, haproxy, redis-server) on loopback ports.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const { port } = s.address() as net.AddressInfo;
            s.close(() => resolve(port));
        });
    });
}

/** Whether a command is on PATH (tests that need it are skipped, saying so, when it is not). */
export const onPath = (cmd: string) => (process.env.PATH ?? "").split(":").some((dir) => fs.existsSync(path.join(dir, cmd)));
