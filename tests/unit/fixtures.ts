// A valid stack config for unit tests, to change one thing at a time.
/**
 * A new ed25519 private key in OpenSSH form. About one in 400 keys ssh2 makes is refused by its
 * own parser ("Malformed OpenSSH private key", 7 of 3000 here), and so by the program: such a
 * key is made again.
 */
export function newSshKey(): string {
    const { utils } = require("ssh2") as typeof import("ssh2");
    for (;;) {
        const key = utils.generateKeyPairSync("ed25519").private;
        if (!(utils.parseKey(key) instanceof Error)) return key;
    }
}

/** A real key (made for this run): the program derives its public key. */
export const KEY = newSshKey();

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
