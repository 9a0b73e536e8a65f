// Two Redis HA clusters from one Pulumi program, with redis-ha as a library: `cache` and
// `queue`, each on its own servers and ports, each with its own passwords (config secrets).
// The program's outputs are what the applications of each need. tests/e2e/library.test.ts
// installs redis-ha from `npm pack` and runs this on the lab.
import * as pulumi from "@pulumi/pulumi";
import { RedisHaCluster } from "redis-ha";

const config = new pulumi.Config();
/** The servers: `cache` uses the first three, `queue` the next three. */
const servers = config.requireObject<{ name: string; ip: string }[]>("servers");
const sshPrivateKey = config.requireSecret("sshPrivateKey");

function cluster(name: string, first: number, port: number) {
    const password = (user: string) => config.requireSecret(`${name}${user}Password`);
    return new RedisHaCluster(name, {
        nodes: servers.slice(first, first + 3).map((s) => ({ name: `${name}-${s.name}`, host: s.ip })),
        sshPrivateKey,
        redis: { port, maxmemory: "32mb" },
        sentinel: { port: port + 20000, masterName: name, downAfterMilliseconds: 1000, failoverTimeout: 10000 },
        adminPassword: password("Admin"),
        replicationPassword: password("Replication"),
        sentinelAuthPassword: password("SentinelAuth"),
        sentinelPassword: password("Sentinel"),
        appPassword: password("App"),
    });
}

const cache = cluster("cache", 0, 6380);
const queue = cluster("queue", 3, 6381);

export const cacheClient = cache.ioredis;
export const cacheMaster = cache.currentMaster;
export const queueClient = queue.ioredis;
export const queueMaster = queue.currentMaster;
