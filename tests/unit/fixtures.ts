// A valid stack config for unit tests, to change one thing at a time.
/** A real key (ed25519, made for this run): the program derives its public key. */
export const KEY = (require("ssh2") as typeof import("ssh2")).utils.generateKeyPairSync("ed25519").private;

export const PASSWORDS = {
    adminPassword: "admin-0123456789abcdef",
    replicationPassword: "replication-0123456789",
    sentinelAuthPassword: "sentinel-auth-0123456789",
    sentinelPassword: "sentinel-0123456789abcdef",
    appPassword: "app-0123456789abcdef",
};

/** Three nodes 10.1.0.1-3 named <prefix>a, <prefix>b, <prefix>c, with a proxy's passwords. */
export function proxiedConfig(proxy: Record<string, unknown>, extra: Record<string, unknown> = {}, prefix = "") {
    return {
        nodes: ["a", "b", "c"].map((n, i) => ({ name: `${prefix}${n}`, host: `10.1.0.${i + 1}` })),
        sshPrivateKey: KEY,
        redis: { maxmemory: "1gb" },
        ...PASSWORDS,
        healthCheckPassword: "health-0123456789abcdef",
        statsPassword: "stats-0123456789abcdef",
        proxy,
        ...extra,
    };
}
