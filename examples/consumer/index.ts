// An application that consumes redis-ha's stack outputs: it talks to Redis through the
// sentinels (ioredis in sentinel mode) and through the write VIP (plain ioredis), writes through
// one and reads through the other, and prints what it saw as JSON.
//
//   pulumi stack output --json --show-secrets | ts-node examples/consumer/index.ts
//
// In a Pulumi program of its own, the same values come from a StackReference:
//   const redisHa = new pulumi.StackReference("org/redis-ha/prod");
//   const options = redisHa.requireOutput("ioredis");   // spread into new Redis({...})
import Redis, { RedisOptions } from "ioredis";

// With tls.enabled both carry `tls` (and ioredis `sentinelTLS`): spread as they are.
interface Outputs {
    ioredis: RedisOptions;
    vipClient?: RedisOptions;
}

async function readStdin(): Promise<string> {
    let s = "";
    for await (const chunk of process.stdin) s += chunk;
    return s;
}

async function main() {
    const outputs = JSON.parse(await readStdin()) as Outputs;
    const viaSentinels = new Redis({ ...outputs.ioredis, connectTimeout: 2000, maxRetriesPerRequest: 2 });
    const report: Record<string, unknown> = {};
    try {
        const key = `consumer:${process.pid}:${Date.now()}`;
        await viaSentinels.set(key, "written through the sentinels", "EX", 60);
        report.sentinelRole = ((await viaSentinels.call("ROLE")) as unknown[])[0];
        if (outputs.vipClient) {
            const viaVip = new Redis({ ...outputs.vipClient, connectTimeout: 2000, maxRetriesPerRequest: 2 });
            try {
                report.readThroughVip = await viaVip.get(key);
                report.vipRole = ((await viaVip.call("ROLE")) as unknown[])[0];
                await viaVip.set(`${key}:vip`, "written through the VIP", "EX", 60);
                report.readThroughSentinels = await viaSentinels.get(`${key}:vip`);
            } finally {
                viaVip.disconnect();
            }
        }
    } finally {
        viaSentinels.disconnect();
    }
    console.log(JSON.stringify(report));
}

main().catch((e) => {
    console.error(`consumer failed: ${(e as Error).message}`);
    process.exit(1);
});
