// SSH for the providers: connect (retrying while a server boots), check the server's host key
// before anything is sent, and run a script with secrets on its stdin. Every function here is
// self-contained (it requires its packages itself): dynamic providers serialize them into the
// Pulumi state and run them in another process.

/** How to reach a server, as the providers receive it. */
export interface Connection {
    host: string;
    port?: number;
    user?: string;
    privateKey: string;
    dialTimeoutSeconds?: number;
}

/** A connection and the host key to expect of the server. */
export interface Target extends Connection {
    hostKey?: string;
    hostKeyResource?: string;
}

/** A host key as the server presented it: `SHA256:…` as `ssh-keygen -lf` prints it, and its type. */
export interface PresentedKey {
    fingerprint: string;
    keyType: string;
}

/**
 * The fingerprint (`SHA256:` and the unpadded base64 of the SHA-256 of the key, exactly as
 * `ssh-keygen -lf` prints it) and the type of a public key in the SSH wire encoding, as ssh2's
 * `hostVerifier` receives it when `hostHash` is not set. Self-contained: serialized into providers.
 */
export function hostKeyOf(blob: Buffer): PresentedKey {
    const { createHash } = require("crypto") as typeof import("crypto");
    const fingerprint = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
    const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : Infinity;
    const keyType = blob.length >= 4 + typeLength ? blob.toString("latin1", 4, 4 + typeLength) : "unknown";
    return { fingerprint, keyType };
}

/** An authenticated SSH session and the host key the server proved it holds. */
export interface SshSession {
    client: import("ssh2").Client;
    hostKey: PresentedKey;
}

/**
 * Opens an authenticated SSH session, retrying while the server cannot be reached (it may still
 * be booting) until `dialTimeoutSeconds` have passed; a refused login fails at once.
 *
 * With `expected` set, the server must present that host key. It is checked in ssh2's
 * `hostVerifier`, during key exchange and before authentication, so a server presenting another
 * key receives nothing of ours, not even the public-key login. A server has one key per type and
 * presents the first type offered; when that is not the expected key, the other types are asked
 * for in turn (a key pinned from a known_hosts line may be its RSA or ECDSA key). When none is the
 * expected key, fails at once, without retrying, with `refusal(the keys presented)` as message.
 * Self-contained: serialized into providers.
 */
export async function sshConnect(conn: Connection, expected?: string, refusal?: (presented: PresentedKey[]) => string): Promise<SshSession> {
    const { Client } = require("ssh2") as typeof import("ssh2");
    const user = conn.user ?? "root";
    const port = conn.port ?? 22;
    const where = `${user}@${conn.host}:${port}`;
    const timeout = conn.dialTimeoutSeconds ?? 60;
    const deadline = Date.now() + timeout * 1000;
    // Host key types by family, in ssh2 1.17's own order, fixed here so that an upgrade of ssh2
    // cannot change which of its keys a server presents (and so break every recorded key).
    let families = [["ssh-ed25519"], ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"], ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]];
    const presented: PresentedKey[] = [];
    const refuse = () => {
        const seen = presented.map((k) => `${k.fingerprint} (${k.keyType})`).join(", ") || "no key of a type we offer";
        return new Error(refusal ? refusal(presented) : `${where} presents ${seen}, not the expected host key ${expected}`);
    };

    const attempt = () =>
        new Promise<SshSession>((resolve, reject) => {
            const client = new Client();
            let seen: PresentedKey | undefined;
            let settled = false;
            client.on("ready", () => {
                settled = true;
                resolve({ client, hostKey: seen! });
            });
            // `on`, not `once`: a second error from a failed attempt must not go unhandled.
            client.on("error", (e: Error) => {
                if (settled) return;
                settled = true;
                client.end();
                reject(Object.assign(e, { seen }));
            });
            client.connect({
                host: conn.host,
                port,
                username: user,
                privateKey: conn.privateKey,
                readyTimeout: 10000,
                algorithms: { serverHostKey: families.flat() as import("ssh2").ServerHostKeyAlgorithm[] },
                hostVerifier: (key: Buffer) => {
                    seen = hostKeyOf(key);
                    return expected === undefined || seen.fingerprint === expected;
                },
            });
        });

    for (;;) {
        try {
            return await attempt();
        } catch (e) {
            const { message, seen } = e as Error & { seen?: PresentedKey };
            if (expected !== undefined && seen && seen.fingerprint !== expected) {
                // Not the expected key: ask for the server's key of the next type, or give up.
                presented.push(seen);
                const rest = families.filter((f) => !f.includes(seen.keyType));
                if (rest.length === 0 || rest.length === families.length) throw refuse();
                families = rest;
                continue;
            }
            if (/no matching host key format/i.test(message)) {
                if (presented.length > 0) throw refuse();
                throw new Error(`${where} offers no host key of a type we accept (${families.flat().join(", ")}): ${message}`);
            }
            if (/signature verification failed/i.test(message)) {
                throw new Error(`${where} presented a host key but could not prove that it holds it (${message}); nothing was sent to it`);
            }
            if (/authentication methods failed|privateKey|passphrase/i.test(message)) {
                throw new Error(`SSH to ${where} refused our key: ${message}. Check sshUser and sshPrivateKey for this node.`);
            }
            if (Date.now() > deadline) {
                // Marked, so that a step that may go on without the server can tell (see RemoteCommand's delete).
                throw Object.assign(new Error(`cannot reach ${where} over SSH (gave up after ${timeout} s): ${message}`), { unreachable: true });
            }
            await new Promise((r) => setTimeout(r, 1000));
        }
    }
}

/**
 * The message for a server that does not present the host key recorded for it: what was
 * expected and presented, that nothing was sent, and how to accept a reinstalled server.
 * Self-contained: serialized into the provider.
 */
export function hostKeyChanged(target: Target, presented: PresentedKey[]): string {
    const port = target.port ?? 22;
    const where = `${target.user ?? "root"}@${target.host}:${port}`;
    const newest = presented[0]?.fingerprint ?? "<fingerprint>";
    const keyFile = (type: string | undefined) =>
        `/etc/ssh/ssh_host_${type === "ssh-rsa" ? "rsa" : type?.startsWith("ecdsa-") ? "ecdsa" : "ed25519"}_key.pub`;
    const replace = target.hostKeyResource
        ? `pulumi up --replace '${target.hostKeyResource}'`
        : `pulumi up --replace <URN of the node's HostKey resource, <node>-host-key; pulumi stack --show-urns lists them>`;
    return [
        `SSH host key of ${where} changed: refusing to connect. Nothing was sent to it (no login, no script, no secret).`,
        `  expected:  ${target.hostKey} (recorded in the Pulumi state for this node)`,
        `  presented: ${presented.map((k) => `${k.fingerprint} (${k.keyType})`).join(", ") || "no key of a type we accept"}`,
        `If the server was reinstalled or its host keys regenerated, check the presented fingerprint on the server's own console ` +
            `(ssh-keygen -lf ${keyFile(presented[0]?.keyType)}), then accept the new key in one of two ways:`,
        `  - pin it in the config (<i>: the index in redis-ha:nodes of the node with host ${target.host}), then pulumi up:`,
        `      pulumi config set --path 'redis-ha:nodes[<i>].hostKey' ${newest}`,
        `  - or, when that node has no hostKey in the config, record it anew:`,
        `      ${replace}`,
        `Either way, every command on this node then runs again, against the new server.`,
        `If nobody changed the server, someone else may be answering on ${target.host}:${port}: find out before accepting its key.`,
    ].join("\n");
}

/** How long an SSH connection stays open for the next step once no step uses it. */
const SSH_IDLE_MS = 5000;
/** How long a channel may take to open on a connection kept open (a dead server's never opens). */
const SSH_CHANNEL_OPEN_MS = 15000;

/** A connection kept open for the steps that follow: the steps using it now, and its idle timer. */
interface KeptSession {
    session: Promise<SshSession>;
    users: number;
    idle?: ReturnType<typeof setTimeout>;
}

/** The connections kept open in this process, by keptSessionKey. Self-contained: serialized into the providers. */
function keptSessions(): Map<string, KeptSession> {
    const slot = Symbol.for("redis-ha.ssh-sessions");
    const global = globalThis as Record<symbol, Map<string, KeptSession> | undefined>;
    return (global[slot] ??= new Map());
}

/** What a kept connection must match: user, host, port, expected host key, private key (hashed). */
function keptSessionKey(target: Target): string {
    const { createHash } = require("crypto") as typeof import("crypto");
    const key = createHash("sha256").update(target.privateKey).digest("hex");
    return [target.user ?? "root", target.host, target.port ?? 22, target.hostKey ?? "", key].join("\n");
}

/**
 * An authenticated session to the target for one step: a connection kept open in this process
 * (the providers' process lives for one `pulumi` run) to the same user, host and port, with the
 * same private key and expected host key, else a new one, kept for the steps after it. Several
 * steps share one connection at once (a channel each); it closes once unused for SSH_IDLE_MS.
 * Connecting costs about 0.2 s here, and a host's steps follow one another. `seed` is a session
 * just opened for the target (HostKey's): kept unless one is kept already. `release(broken)`
 * hands the session back; a broken one is not used again. Self-contained: serialized into the
 * providers.
 */
export async function sshLease(
    target: Target,
    options: { fresh?: boolean; seed?: SshSession } = {},
): Promise<{ client: import("ssh2").Client; kept: boolean; release: (broken?: boolean) => void }> {
    const pool = keptSessions();
    const key = keptSessionKey(target);
    let entry = options.fresh ? undefined : pool.get(key);
    const kept = entry !== undefined;
    if (kept) options.seed?.client.end();
    if (!entry) {
        const session = options.seed ? Promise.resolve(options.seed) : sshConnect(target, target.hostKey, (presented) => hostKeyChanged(target, presented));
        const made: KeptSession = { session, users: 0 };
        const forget = () => pool.get(key) === made && pool.delete(key);
        session.then(({ client }) => client.on("close", forget), forget);
        pool.set(key, made);
        entry = made;
    }
    const used = entry;
    clearTimeout(used.idle);
    used.users++;
    let client: import("ssh2").Client;
    try {
        ({ client } = await used.session);
    } catch (e) {
        used.users--;
        throw e;
    }
    let released = false;
    const release = (broken = false) => {
        if (released) return;
        released = true;
        used.users--;
        if (broken && pool.get(key) === used) pool.delete(key);
        if (used.users > 0) return;
        if (pool.get(key) !== used) return void client.end();
        used.idle = setTimeout(() => {
            if (pool.get(key) === used) pool.delete(key);
            client.end();
        }, SSH_IDLE_MS);
        used.idle.unref?.();
    };
    return { client, kept, release };
}

/**
 * Runs `script` with bash on the server and returns its output, or throws an error naming the
 * server, the exit code and the tail of stderr. Connects with sshConnect (through sshLease, which
 * keeps connections open between steps): retries the connection (not the script) until
 * `dialTimeoutSeconds` has passed, and with `target.hostKey` set, refuses a server presenting
 * another host key before sending anything. A kept connection on which no channel opens (the
 * server restarted or died meanwhile) is dropped and the step connects anew: the script has not
 * started then. Self-contained: it is serialized into the provider.
 */
export async function sshRun(
    target: Target,
    script: string,
    environment: Record<string, string> | undefined,
    stdin: string | undefined,
): Promise<{ stdout: string; stderr: string }> {
    const user = target.user ?? "root";
    const where = `${user}@${target.host}:${target.port ?? 22}`;
    const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

    const exports = Object.entries(environment ?? {})
        .map(([k, v]) => `export ${k}=${quote(v)}\n`)
        .join("");
    const framed = Buffer.from(exports + script, "utf8");
    const runAs = user === "root" ? "bash" : "sudo -n bash";
    // The channel carries the script, then the script's own stdin: dd takes exactly the script's
    // bytes (one block, filled by as many reads as it takes; a read never goes past it), not one
    // byte per read, which cost 40 ms per 30 KB here. A channel closed early leaves dd a short
    // block, which it writes all the same: a script not whole does not run.
    const command =
        `umask 077; d=$(mktemp -d) || exit 97; trap 'rm -rf "$d"' EXIT; ` +
        `dd of="$d/script" bs=${framed.length} count=1 iflag=fullblock status=none && ` +
        `[ "$(stat -c %s "$d/script")" = ${framed.length} ] || { echo "the script arrived cut short" >&2; exit 96; }; ${runAs} "$d/script"`;

    // Marks an error raised before the script started: only then may a kept connection be retried.
    const notStarted = (e: Error) => Object.assign(e, { notStarted: true });
    const run = (client: import("ssh2").Client, kept: boolean) =>
        new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
            let givenUp = false;
            const giveUp = () => {
                givenUp = true;
                reject(notStarted(new Error(`${where}: no channel opened within ${SSH_CHANNEL_OPEN_MS / 1000} s`)));
            };
            const stuck = kept ? setTimeout(giveUp, SSH_CHANNEL_OPEN_MS) : undefined;
            const opened = (err: Error | undefined, channel: import("ssh2").ClientChannel) => {
                clearTimeout(stuck);
                // Opened after all, once the step went on elsewhere: closed with nothing sent, so nothing runs.
                if (givenUp) return void channel?.close();
                if (err) return reject(notStarted(new Error(`${where}: cannot start the script: ${err.message}`)));
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
            };
            try {
                client.exec(command, opened);
            } catch (e) {
                // ssh2 throws when the connection is already closed.
                clearTimeout(stuck);
                reject(notStarted(e as Error));
            }
        });

    for (let fresh = false; ; fresh = true) {
        const lease = await sshLease(target, { fresh });
        let broken = true;
        try {
            const out = await run(lease.client, lease.kept);
            broken = false;
            return out;
        } catch (e) {
            // A script that failed leaves the connection usable.
            broken = (e as { notStarted?: boolean }).notStarted === true;
            if (!broken || !lease.kept || fresh) throw e;
        } finally {
            lease.release(broken);
        }
    }
}

const unpaddedBase64 = (bytes: Buffer) => bytes.toString("base64").replace(/=+$/, "");

/**
 * The OpenSSH fingerprint (`SHA256:…`, as `ssh-keygen -lf` prints it) of a host key given as a
 * fingerprint, a public key (`ssh-ed25519 AAAA… comment`) or a known_hosts line
 * (`[host]:2222 ecdsa-sha2-nistp256 AAAA…`); undefined when the text holds none.
 */
export function hostKeyFingerprint(line: string): string | undefined {
    const tokens = line.trim().split(/\s+/);
    for (const [i, token] of tokens.entries()) {
        const fingerprint = /^SHA256:([A-Za-z0-9+/]{43})$/.exec(token);
        if (fingerprint) {
            const digest = Buffer.from(fingerprint[1], "base64");
            if (digest.length === 32 && unpaddedBase64(digest) === fingerprint[1]) return token;
            continue;
        }
        const blob64 = tokens[i + 1] ?? "";
        if (!/^(ssh|ecdsa|sk)-[A-Za-z0-9.@-]+$/.test(token) || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob64)) continue;
        const blob = Buffer.from(blob64, "base64");
        // A public key blob is SSH strings (length, bytes) from end to end, the first its key type:
        // a cut or mistyped key fails here.
        const fields: Buffer[] = [];
        for (let at = 0; at + 4 <= blob.length && at + 4 + blob.readUInt32BE(at) <= blob.length; at += 4 + blob.readUInt32BE(at)) {
            fields.push(blob.subarray(at + 4, at + 4 + blob.readUInt32BE(at)));
        }
        const wellFormed = fields.reduce((length, field) => length + 4 + field.length, 0) === blob.length && fields.length >= 2;
        if (unpaddedBase64(blob) !== blob64.replace(/=+$/, "") || !wellFormed || fields[0].toString("latin1") !== token) continue;
        return hostKeyOf(blob).fingerprint;
    }
    return undefined;
}

/** The public key of a private key (OpenSSH or PEM), as authorized_keys holds it: "type base64". */
export function publicKeyOf(privateKey: string): string {
    const { utils } = require("ssh2") as typeof import("ssh2");
    const parsed = utils.parseKey(privateKey);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error) throw new Error(`not a usable SSH private key: ${key.message}`);
    return `${key.type} ${key.getPublicSSH().toString("base64")}`;
}
