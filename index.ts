// redis-ha: turns the servers listed in the stack config into a Redis group, over SSH.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseAllConfig, ResolvedConfig, SentinelAgreement, Server } from "./components";

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
const sshPrivateKey = pulumi.secret(cfg.sshPrivateKey);
const adminPassword = pulumi.secret(cfg.adminPassword);

const servers = cfg.nodes.map(
    (node) =>
        new Server(node.name, {
            node,
            sshPrivateKey,
            sshTimeoutSeconds: cfg.sshTimeoutSeconds,
            redisPort: cfg.redis.port,
            adminPassword,
        }),
);

const agreement = new SentinelAgreement(
    "agreement",
    {
        nodes: cfg.nodes.map((n) => ({ name: n.name, host: n.privateIp, port: cfg.redis.port })),
        password: adminPassword,
    },
    { dependsOn: servers.map((s) => s.redis) },
);

export const hosts = Object.fromEntries(cfg.nodes.map((n, i) => [n.name, servers[i].facts]));
export const redisNodes = agreement.reports;
