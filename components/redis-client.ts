// An ioredis client that fails fast: no retries, no offline queue, connection errors reported
// through the command that fails rather than as events. Self-contained (ioredis is required
// inside), so dynamic providers can capture it: their code is serialized into another process.
import * as pulumi from "@pulumi/pulumi";
import type { default as Redis, RedisOptions } from "ioredis";

export function failFastClient(opts: RedisOptions): Redis {
    const Client = require("ioredis") as typeof import("ioredis").default;
    // `tls: undefined` (a cluster without TLS) is left out rather than handed to ioredis.
    const { tls, ...rest } = opts;
    const client = new Client({ lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, ...rest, ...(tls ? { tls } : {}) });
    client.on("error", () => undefined);
    return client;
}

/** Whether an error says the server refused our login or rights: waiting will not help. Self-contained. */
export function refusedLogin(e: unknown): boolean {
    return /WRONGPASS|NOAUTH|NOPERM/.test((e as Error | undefined)?.message ?? "");
}

/**
 * What a client needs to reach the servers with tls.enabled: the cluster's CA, and with
 * tls.authClients a client certificate and its key. Providers take it as their `tls` input and
 * keep it out of their outputs, like passwords.
 */
export interface TlsClientOptions {
    ca: string;
    cert?: string;
    key?: string;
}

/** A resource's `tls` input, secret (it may hold a client key), or nothing without TLS. */
export const secretTls = (tls: pulumi.Input<TlsClientOptions> | undefined) => (tls === undefined ? {} : { tls: pulumi.secret(tls) });

/** Runs fn on a fail-fast connection to host:port as the user `admin` (over TLS with `tls`), and closes it. Self-contained. */
export async function asAdmin<T>(host: string, port: number, password: string, fn: (c: Redis) => Promise<T>, tls?: TlsClientOptions): Promise<T> {
    const c = failFastClient({ host, port, connectTimeout: 2000, commandTimeout: 5000, username: "admin", password, tls });
    let refused: Error | undefined;
    // ioredis drops the connection when AUTH is refused and says why only in an error event:
    // the command then fails with "Connection is closed", which reads like a server not up yet.
    c.on("error", (e: Error) => {
        if (refusedLogin(e)) refused = e;
    });
    try {
        await c.connect();
        return await fn(c);
    } catch (e) {
        throw refused ?? e;
    } finally {
        c.disconnect();
    }
}

/** A reply of field/value pairs (SENTINEL MASTER, each entry of SENTINEL REPLICAS) as a record. Self-contained. */
export function fieldsOf(flat: unknown[]): Record<string, string> {
    const m: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) m[String(flat[i])] = String(flat[i + 1]);
    return m;
}

/** Whether Sentinel's flags for an instance say it is reachable and up. Self-contained. */
export const healthyFlags = (flags: string | undefined) => !/s_down|o_down|disconnected/.test(flags ?? "");
