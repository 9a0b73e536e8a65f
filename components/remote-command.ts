// RemoteCommand: runs a script on a server over SSH, as a Pulumi resource with create, update
// and delete steps. It stands in for @pulumi/command's remote.Command, whose provider binary
// cannot be built on our offline machines (see toolchain/README.md).
//
// How a step runs: the script travels on the SSH channel's stdin, framed by its byte length,
// into a private temporary file, and is run with bash; what follows it on stdin (secrets) is
// the script's own stdin. So neither the script nor any secret shows up in a process list,
// and no secret is ever part of a command line or an environment variable.
import * as pulumi from "@pulumi/pulumi";

/** The SSH connection. The private key is a secret. */
export interface ConnectionArgs {
    host: pulumi.Input<string>;
    port?: pulumi.Input<number>;
    user?: pulumi.Input<string>;
    privateKey: pulumi.Input<string>;
    /** Seconds to keep retrying while the server is unreachable (it may still be booting). Default 60. */
    dialTimeoutSeconds?: pulumi.Input<number>;
}

/**
 * A change of any script, of `stdin` or of `environment` runs the update step (default: the
 * create script again, so scripts must be idempotent). A change of `triggers` or of the target
 * (host, port, user) replaces the resource: delete, then create.
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

interface Connection {
    host: string;
    port?: number;
    user?: string;
    privateKey: string;
    dialTimeoutSeconds?: number;
}

interface Inputs {
    connection: Connection;
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

const PROVIDER_VERSION = "1";

/**
 * Runs `script` with bash on the server and returns its output, or throws an error naming the
 * server, the exit code and the tail of stderr. Retries the connection (not the script) until
 * `dialTimeoutSeconds` has passed. Self-contained: it is serialized into the provider.
 */
async function sshRun(
    conn: Connection,
    script: string,
    environment: Record<string, string> | undefined,
    stdin: string | undefined,
): Promise<{ stdout: string; stderr: string }> {
    const { Client } = require("ssh2") as typeof import("ssh2");
    const user = conn.user ?? "root";
    const where = `${user}@${conn.host}:${conn.port ?? 22}`;
    const deadline = Date.now() + (conn.dialTimeoutSeconds ?? 60) * 1000;
    const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

    const connect = () =>
        new Promise<InstanceType<typeof Client>>((resolve, reject) => {
            const c = new Client();
            c.once("ready", () => resolve(c));
            c.once("error", (e: Error) => reject(e));
            c.connect({ host: conn.host, port: conn.port ?? 22, username: user, privateKey: conn.privateKey, readyTimeout: 10000 });
        });

    let client: InstanceType<typeof Client>;
    for (;;) {
        try {
            client = await connect();
            break;
        } catch (e) {
            const msg = (e as Error).message;
            if (/authentication methods failed|privateKey|passphrase/i.test(msg)) {
                throw new Error(`SSH to ${where} refused our key: ${msg}. Check sshUser and sshPrivateKey for this node.`);
            }
            if (Date.now() > deadline) {
                throw new Error(`cannot reach ${where} over SSH (gave up after ${conn.dialTimeoutSeconds ?? 60} s): ${msg}`);
            }
            await new Promise((r) => setTimeout(r, 1000));
        }
    }

    const exports = Object.entries(environment ?? {})
        .map(([k, v]) => `export ${k}=${quote(v)}\n`)
        .join("");
    const framed = Buffer.from(exports + script, "utf8");
    const runAs = user === "root" ? "bash" : "sudo -n bash";
    const command =
        `umask 077; d=$(mktemp -d) || exit 97; trap 'rm -rf "$d"' EXIT; ` +
        `dd of="$d/script" bs=1 count=${framed.length} status=none && ${runAs} "$d/script"`;

    try {
        return await new Promise((resolve, reject) => {
            client.exec(command, (err, channel) => {
                if (err) return reject(new Error(`${where}: cannot start the script: ${err.message}`));
                let stdout = "";
                let stderr = "";
                channel.on("data", (d: Buffer) => (stdout += d.toString()));
                channel.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
                channel.on("close", (code: number | null, signal?: string) => {
                    if (code === 0) return resolve({ stdout: stdout.trimEnd(), stderr: stderr.trimEnd() });
                    const tail = stderr.trimEnd().split("\n").slice(-15).join("\n");
                    reject(new Error(`${where}: script failed (${signal ? `signal ${signal}` : `exit ${code}`}):\n${tail}`));
                });
                channel.write(framed);
                channel.end(stdin ?? "");
            });
        });
    } finally {
        client.end();
    }
}

// The provider object is serialized with its closure and runs in a separate process: it
// captures only self-contained functions (sshRun), which require their packages themselves.
const provider: pulumi.dynamic.ResourceProvider<Inputs, Outputs> = {
    async check(_olds: Inputs, news: Inputs) {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        if (!news.connection?.host) failures.push({ property: "connection", reason: "connection.host is required" });
        if (!news.create) failures.push({ property: "create", reason: "a create script is required" });
        return { inputs: news, failures };
    },

    async diff(_id: string, olds: Outputs, news: Inputs) {
        const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
        const where = (c: Connection) => [c.host, c.port ?? 22, c.user ?? "root"];
        const replaces: string[] = [];
        if (!same(where(olds.connection), where(news.connection))) replaces.push("connection");
        if (!same(olds.triggers, news.triggers)) replaces.push("triggers");
        const updated = (["create", "update", "delete", "stdin", "environment", "providerVersion"] as const).some(
            (k) => !same(olds[k], news[k]),
        );
        const keyChanged = !same(olds.connection.privateKey, news.connection.privateKey);
        return {
            changes: replaces.length > 0 || updated || keyChanged,
            replaces,
            deleteBeforeReplace: replaces.length > 0 && !!olds.delete,
        };
    },

    async create(inputs: Inputs) {
        const out = await sshRun(inputs.connection, inputs.create, inputs.environment, inputs.stdin);
        const runId = require("crypto").randomUUID() as string;
        return { id: `${inputs.connection.host}-${runId}`, outs: { ...inputs, ...out, runId } };
    },

    async update(_id: string, _olds: Outputs, news: Inputs) {
        const out = await sshRun(news.connection, news.update ?? news.create, news.environment, news.stdin);
        return { outs: { ...news, ...out, runId: require("crypto").randomUUID() as string } };
    },

    async delete(_id: string, props: Outputs) {
        if (!props.delete) return;
        await sshRun(props.connection, props.delete, props.environment, props.stdin);
    },
};

/** How to reach a node over SSH. */
export function nodeConnection(node: { host: string; sshPort: number; sshUser: string }, privateKey: pulumi.Input<string>, dialTimeoutSeconds: number): ConnectionArgs {
    return { host: node.host, port: node.sshPort, user: node.sshUser, privateKey, dialTimeoutSeconds };
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

/** A script run on a server over SSH, with create/update/delete steps. */
export class RemoteCommand extends pulumi.dynamic.Resource {
    declare readonly stdout: pulumi.Output<string>;
    declare readonly stderr: pulumi.Output<string>;
    declare readonly runId: pulumi.Output<string>;

    constructor(name: string, args: RemoteCommandArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                ...args,
                stdin: args.stdin === undefined ? undefined : pulumi.secret(args.stdin),
                connection: pulumi.output(args.connection).apply((c) => ({
                    ...c,
                    privateKey: pulumi.secret(c.privateKey),
                })),
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
