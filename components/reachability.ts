// Before any step runs, every node not marked down must answer on its SSH port: a dead server
// would otherwise hold each of its steps for sshTimeoutSeconds and fail the run half-way. A
// plain TCP connect (no SSH session, nothing sent), to all nodes at once, at preview too.
import * as net from "net";

export interface Reachable {
    name: string;
    host: string;
    sshPort: number;
}

/** Whether host:port accepts a TCP connection, retrying until `seconds` have passed. */
async function answers(host: string, port: number, seconds: number): Promise<string | undefined> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const problem = await new Promise<string | undefined>((resolve) => {
            const socket = net.connect({ host, port, timeout: 2000 });
            socket.once("connect", () => (socket.destroy(), resolve(undefined)));
            socket.once("timeout", () => (socket.destroy(), resolve("no answer within 2 s")));
            socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        });
        if (!problem || Date.now() > deadline) return problem;
        await new Promise((r) => setTimeout(r, 1000));
    }
}

/** The nodes that do not answer on their SSH port within `seconds`, each with why. */
export async function unreachableNodes(nodes: Reachable[], seconds: number): Promise<{ node: Reachable; problem: string }[]> {
    const results = await Promise.all(nodes.map(async (node) => ({ node, problem: await answers(node.host, node.sshPort, seconds) })));
    return results.filter((r): r is { node: Reachable; problem: string } => r.problem !== undefined);
}

/** The message for nodes that do not answer: which, and the ways forward. */
export function unreachableMessage(dead: { node: Reachable; problem: string }[], indexOf: (name: string) => number, seconds: number): string {
    const lines = dead.map(({ node, problem }) => `  - ${node.name} (${node.host}:${node.sshPort}): ${problem}`);
    const first = dead[0].node.name;
    return [
        `${dead.length === 1 ? "a node does" : "nodes do"} not answer SSH (tried for ${seconds} s), so nothing was changed:`,
        ...lines,
        `If it is booting, run pulumi up again once it answers (or raise redis-ha:sshTimeoutSeconds).`,
        `If it is down for a while, mark it down; every step then skips it and the others can still be changed:`,
        `    pulumi config set --path 'redis-ha:nodes[${indexOf(first)}].down' true`,
        `If it is gone for good, replace it (same name with the new server's host, or a new node) or remove it from redis-ha:nodes: README "Day 2".`,
    ].join("\n");
}
