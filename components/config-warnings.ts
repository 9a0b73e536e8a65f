// Legal but risky settings: warnings at preview (index.ts logs them with pulumi.log.warn).
import { CONFIG_NAMESPACE, majority, type ResolvedConfig, SECRET_KEYS } from "./config";
import { certEnd, userCertsText } from "./tls-user-certs";

/**
 * Legal but risky settings, one message each naming the key (for pulumi.log.warn). `isSecret`
 * tells whether a full key (`redis-ha:adminPassword`) is stored encrypted, i.e. was set with --secret.
 */
export function configWarnings(cfg: ResolvedConfig, isSecret: (fullKey: string) => boolean): string[] {
    const warnings: string[] = [];
    const warn = (key: string, message: string) => warnings.push(`${CONFIG_NAMESPACE}:${key} ${message}`);
    const n = cfg.nodes.length;
    if (cfg.sentinel.quorum < majority(n)) {
        warn(
            "sentinel.quorum",
            `is ${cfg.sentinel.quorum} of ${n} sentinels, less than a majority (${majority(n)}): a minority, e.g. sentinels cut off from the master, could agree it is down; set it to ${majority(n)} unless you mean it`,
        );
    }
    if (n > 1 && cfg.redis.minReplicasToWrite === n - 1) {
        warn(
            "redis.minReplicasToWrite",
            `is ${n - 1}, every replica: with one replica down or lagging the master refuses all writes; set it to ${n - 2}${n === 2 ? " (which turns the check off)" : ""} to keep writing with one replica down`,
        );
    }
    if (/^\d+$/.test(cfg.redis.maxmemory)) {
        warn("redis.maxmemory", `is ${cfg.redis.maxmemory} without a unit, i.e. bytes; if you meant more, write the unit, e.g. ${cfg.redis.maxmemory}mb or 2gb`);
    }
    if (cfg.sentinel.downAfterMilliseconds < 1000) {
        warn(
            "sentinel.downAfterMilliseconds",
            `is ${cfg.sentinel.downAfterMilliseconds}, under a second: a busy host or a short network hiccup will trigger failovers that were not needed; use 1000 or more (Sentinel's default: 30000)`,
        );
    }
    for (const key of [...SECRET_KEYS, "previousPasswords"] as const) {
        if (cfg[key] !== undefined && !isSecret(`${CONFIG_NAMESPACE}:${key}`)) {
            warn(key, `is stored in the stack file in clear text; encrypt it: pulumi config set --secret ${CONFIG_NAMESPACE}:${key} ... (then rotate it: it has been readable)`);
        }
    }
    const retiring = Object.keys(cfg.previousPasswords ?? {});
    if (retiring.length > 0) {
        warn(
            "previousPasswords",
            `still lets in the old ${retiring.join(", ")}: once every application uses the new outputs, pulumi config rm ${CONFIG_NAMESPACE}:previousPasswords (or --path …${retiring[0]}) and run pulumi up`,
        );
    }
    if (cfg.previousSshPrivateKey !== undefined) {
        warn("previousSshPrivateKey", `is still authorised on the servers: once this run is done, pulumi config rm ${CONFIG_NAMESPACE}:previousSshPrivateKey and run pulumi up to remove it`);
    }
    // The user's own certificates are theirs to renew: say so while there is time.
    const own = cfg.tls.enabled && cfg.tlsCertificates !== undefined ? userCertsText.safeParse(cfg.tlsCertificates).data : undefined;
    const soon = Date.now() + cfg.tls.renewBeforeDays * 86_400_000;
    for (const [name, p] of [...Object.entries(own?.nodes ?? {}), ...Object.entries(own?.clients ?? {})]) {
        const end = p && certEnd(p.cert);
        if (end && Date.parse(end) < soon) {
            warn("tlsCertificates", `holds a certificate for ${name} that ends on ${end}, within tls.renewBeforeDays (${cfg.tls.renewBeforeDays}): issue a new one and set it; pulumi up then loads it without restarting Redis`);
        }
    }
    if (cfg.sentinel.legacyClientAuth) {
        warn(
            "sentinel.legacyClientAuth",
            "is true: Sentinel's default user stays on (discovery only, with the sentinelPassword) for applications without a sentinelUsername; move them to the sentinelUsername output, then pulumi config set --path redis-ha:sentinel.legacyClientAuth false",
        );
    }
    return warnings;
}
