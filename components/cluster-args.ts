// What RedisHaCluster takes: the stack config's keys, typed as the zod schema's input (defaults
// optional), the secrets as pulumi.Input<string>. Checked with the schema's own messages: at
// once for everything known while the program runs, and the secrets that arrive as Outputs
// once their values are known (a failed check then fails the update, before any server runs).
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { OPTIONAL_SECRET_KEYS, parseStackConfig, type ResolvedConfig, type RotatingKey, SECRET_KEYS, type SecretKey, type stackConfigSchema } from "./config";
import type { ClusterSecrets } from "./redis-node";
import { type UserCerts, userCertsText } from "./tls-user-certs";

type SchemaInput = z.input<typeof stackConfigSchema>;

export type ClusterArgs = Omit<SchemaInput, SecretKey | "previousPasswords"> & {
    [K in Exclude<SecretKey, (typeof OPTIONAL_SECRET_KEYS)[number]>]: pulumi.Input<string>;
} & {
    [K in (typeof OPTIONAL_SECRET_KEYS)[number]]?: pulumi.Input<string>;
} & {
    previousPasswords?: pulumi.Input<PreviousPasswords>;
};

/** The passwords being retired, by key: still accepted next to the new ones. */
export type PreviousPasswords = Partial<Record<RotatingKey, string>>;

/** The config with its defaults, and the secrets, each a secret Output, checked. */
export interface ResolvedArgs {
    /** Holds no secret: the secret keys are left out (they are in `sshPrivateKey` and `secrets`). */
    cfg: ResolvedConfig;
    sshPrivateKey: pulumi.Output<string>;
    /** The SSH key being retired, if any. */
    previousSshPrivateKey?: pulumi.Output<string>;
    /** The passwords, and in `previous` those being retired ({} when none). */
    secrets: ClusterSecrets;
    /** Certificates the user brought (tlsCertificates), if any. */
    tlsCertificates?: pulumi.Output<UserCerts>;
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
        // No stand-in can pass for certificates that must match the nodes: checked once known.
        if (key === "tlsCertificates") delete plain[key];
        else plain[key] = standIn(key);
        pending.push(key);
    }
    const previousPending = args.previousPasswords !== undefined && (pulumi.Output.isInstance(args.previousPasswords) || args.previousPasswords instanceof Promise);
    if (previousPending) plain.previousPasswords = {};
    const cfg = parseStackConfig(plain);
    // The secrets that were Outputs get the same checks once known; the rest passed already.
    const values = pulumi.all({ ...Object.fromEntries(SECRET_KEYS.map((k) => [k, args[k]])), previousPasswords: args.previousPasswords });
    const checked = values.apply((v) => {
        if (pending.length > 0 || previousPending) parseStackConfig({ ...plain, ...v });
        return v as unknown as Record<SecretKey, string | undefined> & { previousPasswords?: PreviousPasswords };
    });
    const secret = (key: SecretKey) => pulumi.secret(checked.apply((v) => v[key]!));
    const optional = (key: SecretKey) => (args[key] === undefined ? undefined : secret(key));
    for (const key of [...SECRET_KEYS, "previousPasswords"] as const) delete (cfg as Partial<Record<SecretKey | "previousPasswords", unknown>>)[key];
    return {
        cfg,
        sshPrivateKey: secret("sshPrivateKey"),
        previousSshPrivateKey: optional("previousSshPrivateKey"),
        secrets: {
            admin: secret("adminPassword"),
            replication: secret("replicationPassword"),
            sentinelAuth: secret("sentinelAuthPassword"),
            sentinel: secret("sentinelPassword"),
            app: secret("appPassword"),
            healthCheck: optional("healthCheckPassword"),
            stats: optional("statsPassword"),
            metrics: optional("metricsPassword"),
            previous: pulumi.secret(checked.apply((v) => v.previousPasswords ?? {})),
        },
        tlsCertificates: args.tlsCertificates === undefined ? undefined : pulumi.secret(checked.apply((v) => userCertsText.parse(v.tlsCertificates))),
    };
}
