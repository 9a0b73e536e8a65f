// RemoteCommand: runs a script on a server over SSH, as a Pulumi resource with create, update
// and delete steps. It stands in for @pulumi/command's remote.Command, whose provider binary
// cannot be built on our offline machines (see toolchain/README.md).
//
// How a step runs: the script travels on the SSH channel's stdin, framed by its byte length,
// into a private temporary file, and is run with bash; what follows it on stdin (secrets) is
// the script's own stdin. So neither the script nor any secret shows up in a process list,
// and no secret is ever part of a command line or an environment variable.
//
// Whom it talks to: with `connection.hostKey` set (a HostKey's fingerprint, see host-key.ts),
// the server must present that host key before anything is sent, login included; another key
// fails the step at once, saying how to accept a reinstalled server.
import * as pulumi from "@pulumi/pulumi";
import { scriptLabel } from "./assets";
import { engineLog } from "./provider-log";
import { type Connection, sshRun, type Target } from "./ssh";

/** The SSH connection. The private key is a secret. */
export interface ConnectionArgs {
    host: pulumi.Input<string>;
    port?: pulumi.Input<number>;
    user?: pulumi.Input<string>;
    privateKey: pulumi.Input<string>;
    /** Seconds to keep retrying while the server is unreachable (it may still be booting). Default 60. */
    dialTimeoutSeconds?: pulumi.Input<number>;
    /**
     * The host key the server must present: its fingerprint, `SHA256:…` as `ssh-keygen -lf`
     * prints it, normally a `HostKey`'s `fingerprint` (see host-key.ts). It is checked during key
     * exchange, before authentication: a server presenting another key receives nothing of ours.
     * Unset: not checked (stacks from before host keys were recorded).
     */
    hostKey?: pulumi.Input<string>;
    /** For error messages only: the URN of the `HostKey` resource that recorded `hostKey`. */
    hostKeyResource?: pulumi.Input<string>;
}

/**
 * A change of any script, of `stdin` or of `environment` runs the update step (default: the
 * create script again, so scripts must be idempotent); so does another host key than the one
 * recorded (a reinstalled server). A change of `triggers` or of the target (host, port, user)
 * replaces the resource: delete, then create. A new private key, or a host key recorded for the
 * first time, is only kept in the state: an update that runs nothing (see planChange).
 */
export interface RemoteCommandArgs {
    connection: pulumi.Input<ConnectionArgs>;
    /** Script run at creation. */
    create: pulumi.Input<string>;
    /** Script run when an input changed. Default: `create`. */
    update?: pulumi.Input<string>;
    /** Script run at deletion. Default: nothing runs. */
    delete?: pulumi.Input<string>;
    /** Fed to the script's stdin; made secret. Put passwords here, nowhere else. */
    stdin?: pulumi.Input<string>;
    /** Non-secret variables exported to the script (they travel inside the framed script). */
    environment?: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Any change here replaces the resource (delete, then create). */
    triggers?: pulumi.Input<unknown[]>;
}

interface Inputs {
    /** Secret as a whole (it holds the private key). */
    connection: Connection;
    /**
     * The expected host key fingerprint. Kept outside `connection` so that it can be unknown
     * during a preview (a HostKey still to be created) while the connection stays known: an
     * unknown connection would look like another target, and the preview would show every
     * command replaced.
     */
    hostKey?: string;
    hostKeyResource?: string;
    create: string;
    update?: string;
    delete?: string;
    stdin?: string;
    environment?: Record<string, string>;
    triggers?: unknown[];
    /** Bumped when the provider's behaviour changes, so stacks see the change. */
    providerVersion: string;
}

interface Outputs extends Inputs {
    stdout: string;
    stderr: string;
    /** New at every run of a step: lets dependants notice that this command ran. */
    runId: string;
}

// Not bumped for host keys: a command whose state has no host key yet records it by an update
// that runs nothing (see planChange), and that update also stores the new provider code, which
// later delete steps use. Bumping this would run every script on every node again.
const PROVIDER_VERSION = "1";
/** How long a delete step tries to reach a server before it drops the resource (see delete). */
const DELETE_DIAL_SECONDS = 10;

const PACKED = "gzip:";
/**
 * A script as inputs and the state hold it: gzipped, base64, a quarter to a half of its bytes.
 * Each script travels in several engine RPCs per run, and Pulumi's CLI writes every RPC, values
 * and all, to its compressed log in ~/.pulumi/logs: the plain texts cost every run time there.
 */
export function packScript(text: string): string {
    return PACKED + (require("zlib") as typeof import("zlib")).gzipSync(text, { level: 9 }).toString("base64");
}

/** The text of a script, packed or (a state from before packing) not. Self-contained: serialized into the provider. */
export function unpackScript(text: string | undefined): string | undefined {
    if (text === undefined || !text.startsWith(PACKED)) return text;
    return (require("zlib") as typeof import("zlib")).gunzipSync(Buffer.from(text.slice(PACKED.length), "base64")).toString("utf8");
}

/**
 * What a change of inputs asks of a RemoteCommand. Self-contained: serialized into the provider.
 *  - replaces: another target (host, port, user) or other triggers: delete, then create;
 *  - run: the update step runs: another script, stdin, environment or provider version; or
 *    another host key than the one recorded, which means the node was reinstalled or replaced,
 *    so its configuration is likely gone and the (idempotent) scripts run again to restore it;
 *  - record: only connection details to keep, nothing to run: a rotated SSH key, a host key
 *    recorded for the first time (a command from before host keys were checked; the HostKey
 *    that supplies it has just verified or recorded this server) or no longer given, or the
 *    HostKey's URN.
 * Why "record" is an update and not "no change": when diff reports no change, Pulumi keeps the
 * old outputs (a "same" step stores the new inputs but the old outputs), and delete steps read
 * the outputs, so a later delete would connect with the old private key and check no host key;
 * it would even run the old provider code, which is serialized into the outputs too. The record
 * update replaces the outputs and opens no SSH session; the plan shows it as an update.
 */
function planChange(olds: Outputs, news: Inputs): { replaces: string[]; run: boolean; record: boolean } {
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    // A script packed or not (a state from before packing) is the same script.
    const sameScript = (a: string | undefined, b: string | undefined) => a === b || unpackScript(a) === unpackScript(b);
    const where = (c: Connection) => [c.host, c.port ?? 22, c.user ?? "root"];
    const replaces: string[] = [];
    if (!same(where(olds.connection), where(news.connection))) replaces.push("connection");
    if (!same(olds.triggers, news.triggers)) replaces.push("triggers");
    const rekeyed = olds.hostKey !== undefined && news.hostKey !== undefined && olds.hostKey !== news.hostKey;
    const run =
        rekeyed ||
        (["create", "update", "delete"] as const).some((k) => !sameScript(olds[k], news[k])) ||
        (["stdin", "environment", "providerVersion"] as const).some((k) => !same(olds[k], news[k]));
    const record = !same(olds.connection.privateKey, news.connection.privateKey) || !same(olds.hostKey, news.hostKey) || !same(olds.hostKeyResource, news.hostKeyResource);
    return { replaces, run, record };
}

/** The target of a command: its connection and the host key to expect. */
const targetOf = (p: Inputs): Target => ({ ...p.connection, hostKey: p.hostKey, hostKeyResource: p.hostKeyResource });

// The provider object is serialized with its closure and runs in a separate process: it
// captures only self-contained functions (sshRun, planChange, targetOf), which require their
// packages themselves. Exported for tests, which call it directly.
export const remoteCommandProvider: pulumi.dynamic.ResourceProvider<Inputs, Outputs> = {
    async check(_olds: Inputs, news: Inputs) {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        if (!news.connection?.host) failures.push({ property: "connection", reason: "connection.host is required" });
        if (!news.create) failures.push({ property: "create", reason: "a create script is required" });
        return { inputs: news, failures };
    },

    async diff(_id: string, olds: Outputs, news: Inputs) {
        const { replaces, run, record } = planChange(olds, news);
        return {
            changes: replaces.length > 0 || run || record,
            replaces,
            deleteBeforeReplace: replaces.length > 0 && !!olds.delete,
        };
    },

    async create(inputs: Inputs) {
        const out = await sshRun(targetOf(inputs), unpackScript(inputs.create)!, inputs.environment, inputs.stdin);
        const runId = require("crypto").randomUUID() as string;
        return { id: `${inputs.connection.host}-${runId}`, outs: { ...inputs, ...out, runId } };
    },

    async update(_id: string, olds: Outputs, news: Inputs) {
        if (!planChange(olds, news).run) {
            return { outs: { ...news, stdout: olds.stdout, stderr: olds.stderr, runId: olds.runId } };
        }
        const out = await sshRun(targetOf(news), unpackScript(news.update ?? news.create)!, news.environment, news.stdin);
        return { outs: { ...news, ...out, runId: require("crypto").randomUUID() as string } };
    },

    // The old state's host key is checked here too; a state from before host keys has none.
    // A server that does not answer (dead, or being replaced) must not block the removal of its
    // resources for ever: after a bounded try the resource is dropped, with a warning.
    async delete(_id: string, props: Outputs) {
        if (!props.delete) return;
        const dialTimeoutSeconds = Math.min(props.connection.dialTimeoutSeconds ?? 60, DELETE_DIAL_SECONDS);
        try {
            await sshRun({ ...targetOf(props), dialTimeoutSeconds }, unpackScript(props.delete)!, props.environment, props.stdin);
        } catch (e) {
            if (!(e as { unreachable?: boolean }).unreachable) throw e;
            engineLog("remote command", "warning")(
                `${props.connection.host} did not answer SSH for ${dialTimeoutSeconds} s: dropped from the state without running its removal step ` +
                    `(${(e as Error).message}). If that server comes back, it still runs what this step would have removed (README "Day 2").`,
            );
        }
    },
};

/** How to reach a node over SSH. */
export function nodeConnection(node: { host: string; sshPort: number; sshUser: string }, privateKey: pulumi.Input<string>, dialTimeoutSeconds: number): ConnectionArgs {
    return { host: node.host, port: node.sshPort, user: node.sshUser, privateKey, dialTimeoutSeconds };
}

/**
 * A connection as a resource input: secret as a whole (it holds the private key), with its host
 * key fields apart, so that an unknown host key (a HostKey still to be created) leaves the
 * connection known. (Given as one Output, it is all unknown until that Output is known.)
 */
export function connectionInputs(connection: pulumi.Input<ConnectionArgs>): {
    connection: pulumi.Output<Connection>;
    hostKey?: pulumi.Input<string | undefined>;
    hostKeyResource?: pulumi.Input<string | undefined>;
} {
    const secret = ({ hostKey: _k, hostKeyResource: _r, ...c }: pulumi.Unwrap<ConnectionArgs>): pulumi.Output<Connection> => pulumi.secret(c);
    if (pulumi.Output.isInstance(connection) || connection instanceof Promise) {
        const c = pulumi.output(connection);
        return {
            connection: c.apply(secret),
            hostKey: pulumi.unsecret(c.apply((x) => x.hostKey)),
            hostKeyResource: pulumi.unsecret(c.apply((x) => x.hostKeyResource)),
        };
    }
    const { hostKey, hostKeyResource, ...rest } = connection;
    return { connection: pulumi.output(rest).apply(secret), hostKey, hostKeyResource };
}

/** Secrets for a script's stdin, one "name value" line each (read by read_secrets in assets/lib/common.sh). */
export function secretLines(secrets: Record<string, pulumi.Input<string>>): pulumi.Output<string> {
    return pulumi.secret(
        pulumi.all(secrets).apply((s) =>
            Object.entries(s)
                .map(([name, value]) => `${name} ${value}\n`)
                .join(""),
        ),
    );
}

/** The script inputs as a preview shows them: the texts hidden, a label (asset and digest) for each. */
function scriptInputs(args: RemoteCommandArgs) {
    const steps = { create: args.create, update: args.update, delete: args.delete };
    const hidden = (text: pulumi.Input<string> | undefined) => (text === undefined ? undefined : pulumi.secret(pulumi.output(text).apply(packScript)));
    return {
        create: hidden(steps.create),
        update: hidden(steps.update),
        delete: hidden(steps.delete),
        scripts: pulumi
            .all(steps)
            .apply((s) => Object.fromEntries(Object.entries(s).flatMap(([step, text]) => (text === undefined ? [] : [[step, scriptLabel(text)]])))),
    };
}

/** A script run on a server over SSH, with create/update/delete steps. */
export class RemoteCommand extends pulumi.dynamic.Resource {
    declare readonly stdout: pulumi.Output<string>;
    declare readonly stderr: pulumi.Output<string>;
    declare readonly runId: pulumi.Output<string>;

    constructor(name: string, args: RemoteCommandArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            remoteCommandProvider,
            name,
            {
                ...args,
                // Scripts are no secret, but a preview prints a changed input whole, old and new:
                // as secrets they show as [secret], and `scripts` shows which one changed (name
                // and digest) in one line.
                ...scriptInputs(args),
                stdin: args.stdin === undefined ? undefined : pulumi.secret(args.stdin),
                ...connectionInputs(args.connection),
                providerVersion: PROVIDER_VERSION,
                stdout: undefined,
                stderr: undefined,
                runId: undefined,
            },
            {
                ...opts,
                additionalSecretOutputs: ["connection", "stdin", ...(opts?.additionalSecretOutputs ?? [])],
            },
        );
    }
}
