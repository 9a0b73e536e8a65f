// HostKey: the SSH host key of one node, pinned. A dynamic resource created before any command on
// the node: it connects once (waiting while the host boots) and records the key the server
// presents, or, when the operator pinned one in the config (nodes[].hostKey), refuses a server
// presenting another. Every RemoteCommand on the node then gets the fingerprint in its connection
// and refuses, before sending anything, a server presenting another key.
//
// It never connects again while its host, port and pin stay the same: a no-op `pulumi up` opens
// no SSH session for it. A new address replaces it (the key of the new address is recorded); so
// does a pin other than the recorded key (the server must then present the pinned key). Removing
// a pin keeps the recorded key. To accept a reinstalled server: set the new fingerprint as the
// node's hostKey, or `pulumi up --replace <URN of ${node}-host-key>`.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, connectionInputs, nodeConnection } from "./remote-command";
import { Connection, hostKeyChanged, hostKeyOf, PresentedKey, sshConnect, sshLease } from "./ssh";

export { hostKeyOf };

export interface HostKeyArgs {
    /** How to reach the node. Host key fields in it, if any, are ignored. */
    connection: pulumi.Input<ConnectionArgs>;
    /**
     * The fingerprint the server must present, `SHA256:…` as `ssh-keygen -lf` prints it (from the
     * config's nodes[].hostKey). Default: none; the key seen at creation is trusted and recorded.
     */
    pinned?: pulumi.Input<string | undefined>;
}

export interface HostKeyInputs {
    /** Secret as a whole (it holds the private key). */
    connection: Connection;
    pinned?: string;
    providerVersion: string;
}

/** What the state keeps: no private key. */
export interface HostKeyOutputs {
    host: string;
    port: number;
    /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
    fingerprint: string;
    /** The key's type, e.g. ssh-ed25519. */
    keyType: string;
    providerVersion: string;
}

const PROVIDER_VERSION = "1";

/**
 * The message for a server that does not present the pinned key. Self-contained: serialized into
 * the provider.
 */
function pinRefused(conn: Connection, pinned: string, presented: PresentedKey[]): string {
    const port = conn.port ?? 22;
    return [
        `${conn.user ?? "root"}@${conn.host}:${port} does not present the host key pinned for this node, so nothing was sent to it.`,
        `  pinned:    ${pinned} (redis-ha:nodes[i].hostKey)`,
        `  presented: ${presented.map((k) => `${k.fingerprint} (${k.keyType})`).join(", ") || "no key of a type we accept"}`,
        `If the pin is mistyped or old, read the server's fingerprint on its own console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) ` +
            `and set it: pulumi config set --path 'redis-ha:nodes[<i>].hostKey' <fingerprint>.`,
        `If the pin is right, someone else answers on ${conn.host}:${port}: find out before going on.`,
    ].join("\n");
}

/**
 * Connects to the server and returns the key it proved to hold: the `expected` one (pinned in
 * the config, or recorded in the state), or with none expected, the one it presents.
 * Self-contained: serialized into the provider.
 */
export async function readHostKey(conn: Connection, expected: string | undefined, why: "pinned" | "recorded" = "pinned"): Promise<PresentedKey> {
    const refusal = (presented: PresentedKey[]) =>
        why === "pinned" ? pinRefused(conn, expected!, presented) : hostKeyChanged({ ...conn, hostKey: expected }, presented);
    const session = await sshConnect(conn, expected, refusal);
    // The node's first steps come next, with this key to expect: they take this connection.
    (await sshLease({ ...conn, hostKey: session.hostKey.fingerprint }, { seed: session })).release();
    return session.hostKey;
}

// Serialized with its closure (readHostKey, sshConnect, sshLease, pinRefused) into the state; exported for
// tests, which call it directly.
export const hostKeyProvider: pulumi.dynamic.ResourceProvider<HostKeyInputs, HostKeyOutputs> = {
    async check(_olds: HostKeyInputs, news: HostKeyInputs) {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        if (!news.connection?.host) failures.push({ property: "connection", reason: "connection.host is required" });
        if (news.pinned !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(news.pinned)) {
            failures.push({
                property: "pinned",
                reason: `${news.pinned} is not a host key fingerprint as ssh-keygen -lf prints it (SHA256: and 43 base64 characters)`,
            });
        }
        return { inputs: news, failures };
    },

    async diff(_id: string, olds: HostKeyOutputs, news: HostKeyInputs) {
        const replaces: string[] = [];
        if (olds.host !== news.connection.host || olds.port !== (news.connection.port ?? 22)) replaces.push("connection");
        // A pin equal to the recorded key needs no new look: that key is what commands check.
        if (news.pinned !== undefined && news.pinned !== olds.fingerprint) replaces.push("pinned");
        return { changes: replaces.length > 0 || olds.providerVersion !== news.providerVersion, replaces };
    },

    async create(inputs: HostKeyInputs) {
        const key = await readHostKey(inputs.connection, inputs.pinned);
        const port = inputs.connection.port ?? 22;
        const outs = { host: inputs.connection.host, port, ...key, providerVersion: inputs.providerVersion };
        return { id: `${inputs.connection.host}:${port}-${require("crypto").randomUUID()}`, outs };
    },

    // Only a new provider version gets here: look again, but accept nothing but the recorded key.
    async update(_id: string, olds: HostKeyOutputs, news: HostKeyInputs) {
        const key = await readHostKey(news.connection, olds.fingerprint, "recorded");
        return { outs: { ...olds, ...key, providerVersion: news.providerVersion } };
    },
};

/** The SSH host key of a node, recorded at creation or pinned by the operator. */
export class HostKey extends pulumi.dynamic.Resource {
    /** `SHA256:…`, as `ssh-keygen -lf` prints it. Give it to RemoteCommand connections as `hostKey`. */
    declare readonly fingerprint: pulumi.Output<string>;
    /** The key's type, e.g. ssh-ed25519. */
    declare readonly keyType: pulumi.Output<string>;

    constructor(name: string, args: HostKeyArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            hostKeyProvider,
            name,
            {
                connection: connectionInputs(args.connection).connection,
                pinned: args.pinned,
                providerVersion: PROVIDER_VERSION,
                host: undefined,
                port: undefined,
                fingerprint: undefined,
                keyType: undefined,
            },
            opts,
        );
    }
}

/** A node as nodeSsh needs it (NodeConfig fits). */
export interface SshNode {
    name: string;
    host: string;
    sshPort: number;
    sshUser: string;
    /** The pinned fingerprint, `SHA256:…`. */
    hostKey?: string;
}

/**
 * Per node: its HostKey resource, named `${node.name}-host-key`, and the connection every
 * RemoteCommand on the node must use. That connection carries the fingerprint to check, so each
 * command depends on the HostKey and runs after it.
 */
export function nodeSsh(
    node: SshNode,
    privateKey: pulumi.Input<string>,
    dialTimeoutSeconds: number,
    opts?: pulumi.CustomResourceOptions,
): { hostKey: HostKey; connection: ConnectionArgs } {
    const base = nodeConnection(node, privateKey, dialTimeoutSeconds);
    const hostKey = new HostKey(`${node.name}-host-key`, { connection: base, pinned: node.hostKey }, opts);
    return { hostKey, connection: { ...base, hostKey: hostKey.fingerprint, hostKeyResource: hostKey.urn } };
}
