// redis-ha: turns the servers listed in the stack config into a highly available Redis
// (master, replicas, Sentinel on every node), over SSH.
// First: loads the rest faster (toolchain/program-start.js).
import "./toolchain/program-start";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, configWarnings, parseAllConfig, RedisHaCluster, ResolvedConfig } from "./components";

// Validate everything before any resource exists: a bad key fails the preview, not a server.
function loadConfig(): ResolvedConfig {
    try {
        return parseAllConfig(pulumi.runtime.allConfig());
    } catch (e) {
        // A RunError prints its message alone, without a stack trace: the mistake is the config's.
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
}

const cfg = loadConfig();
// Legal but risky settings: a warning at preview. (isConfigSecret is internal to @pulumi/pulumi:
// present at runtime, absent from its types; without it no clear-text warning is given.)
const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret?: (fullKey: string) => boolean }).isConfigSecret;
for (const warning of configWarnings(cfg, isConfigSecret ?? (() => true))) pulumi.log.warn(warning);
// One cluster, from the stack's config (checked above, so the component's own check passes at
// once); its outputs are the stack's. The component makes the SSH key and passwords secrets.
const cluster = new RedisHaCluster("redis-ha", cfg);

export const masterName = cluster.masterName;
export const sentinels = cluster.sentinels;
export const currentMaster = cluster.currentMaster;
export const replicas = cluster.replicas;
export const nodes = cluster.nodes;
export const ioredis = cluster.ioredis;
export const write = cluster.write;
export const read = cluster.read;
export const proxyStats = cluster.proxyStats;
export const vipClient = cluster.vipClient;
export const metricsTargets = cluster.metricsTargets;
export const tlsCaCertificate = cluster.tlsCaCertificate;
