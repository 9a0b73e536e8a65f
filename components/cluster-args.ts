// What RedisHaCluster takes: the stack config's keys, typed as the zod schema's input (defaults
// optional), the secrets as pulumi.Input<string>. Checked with the schema's own messages: at
// once for everything known while the program runs, and the secrets that arrive as Outputs
// once their values are known (a failed check then fails the update, before any server runs).
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { parseStackConfig, PROXY_PASSWORD_KEYS, type ResolvedConfig, SECRET_KEYS, type SecretKey, type stackConfigSchema } from "./config";
import type { ClusterSecrets } from "./redis-node";

type SchemaInput = z.input<typeof stackConfigSchema>;

export type ClusterArgs = Omit<SchemaInput, SecretKey> & {
    [K in Exclude<SecretKey, (typeof PROXY_PASSWORD_KEYS)[number]>]: pulumi.Input<string>;
} & {
    [K in (typeof PROXY_PASSWORD_KEYS)[number]]?: pulumi.Input<string>;
};

/** The config with its defaults, and the secrets, each a secret Output, checked. */
export interface ResolvedArgs {
    /** Holds no secret: the secret keys are left out (they are in `sshPrivateKey` and `secrets`). */
    cfg: ResolvedConfig;
    sshPrivateKey: pulumi.Output<string>;
    secrets: ClusterSecrets;
}

/** A value that passes every check of its key, in place of a secret not known yet. */
const standIn = (key: SecretKey) =>
    key === "sshPrivateKey" ? "-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in\n-----END OPENSSH PRIVATE KEY-----" : `stand-in-for-${key}-0123456789`;

/** Checks the args (throws a ConfigError listing every problem) and resolves their defaults. */
export function resolveClusterArgs(args: ClusterArgs): ResolvedArgs {
    const plain: Record<string, unknown> = { ...args };
    const pending: SecretKey[] = [];
    for (const key of SECRET_KEYS) {
        const value = args[key];
        if (value === undefined || typeof value === "string") continue;
        plain[key] = standIn(key);
        pending.push(key);
    }
    const cfg = parseStackConfig(plain);
    // The secrets that were Outputs get the same checks once known; the rest passed already.
    const checked = pulumi.all(Object.fromEntries(SECRET_KEYS.map((k) => [k, args[k]]))).apply((values) => {
        if (pending.length > 0) parseStackConfig({ ...plain, ...values });
        return values as Record<SecretKey, string | undefined>;
    });
    const secret = (key: SecretKey) => pulumi.secret(checked.apply((v) => v[key]!));
    const optional = (key: SecretKey) => (args[key] === undefined ? undefined : secret(key));
    for (const key of SECRET_KEYS) delete (cfg as Partial<Record<SecretKey, unknown>>)[key];
    return {
        cfg,
        sshPrivateKey: secret("sshPrivateKey"),
        secrets: {
            admin: secret("adminPassword"),
            replication: secret("replicationPassword"),
            sentinelAuth: secret("sentinelAuthPassword"),
            sentinel: secret("sentinelPassword"),
            app: secret("appPassword"),
            healthCheck: optional("healthCheckPassword"),
            stats: optional("statsPassword"),
        },
    };
}
