// The stack config schema: what it accepts, the defaults it fills in, and the message each
// mistake gets (naming the key as `pulumi config` spells it, and the fix).
import * as assert from "assert";
import { ConfigError, parseAllConfig, parseStackConfig } from "../../components/config";
import { KEY, PASSWORDS, proxiedConfig } from "./fixtures";

const good = () => ({
    initialMaster: undefined as string | undefined,
    nodes: [
        { name: "redis-1", host: "10.211.11.7" },
        { name: "redis-2", host: "10.211.11.8" },
        { name: "redis-3", host: "redis-3.example.net", privateIp: "10.211.11.9", sshUser: "deploy", sshPort: 2222 },
    ],
    sshPrivateKey: KEY,
    redis: { maxmemory: "256mb" } as Record<string, unknown>,
    sentinel: {} as Record<string, unknown>,
    ...PASSWORDS,
});

function problemsOf(raw: Record<string, unknown>): string[] {
    try {
        parseStackConfig(raw);
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
        return e.problems;
    }
    return [];
}

describe("stack config", () => {
    it("accepts a valid config and fills in secure defaults", () => {
        const cfg = parseStackConfig(good());
        assert.strictEqual(cfg.redis.port, 6379);
        assert.strictEqual(cfg.redis.appendonly, true);
        assert.strictEqual(cfg.redis.minReplicasToWrite, 1);
        assert.strictEqual(cfg.redis.minReplicasMaxLag, 10);
        assert.strictEqual(cfg.redis.maxmemoryPolicy, "noeviction");
        assert.strictEqual(cfg.redis.purgeDataOnDestroy, false);
        assert.deepStrictEqual(
            [cfg.sentinel.port, cfg.sentinel.masterName, cfg.sentinel.quorum, cfg.sentinel.downAfterMilliseconds, cfg.sentinel.failoverTimeout, cfg.sentinel.parallelSyncs],
            [26379, "mymaster", 2, 30000, 180000, 1],
        );
        assert.deepStrictEqual(cfg.kernel, { transparentHugePages: "never", overcommitMemory: 1, somaxconn: 1024 });
        assert.strictEqual(cfg.initialMaster, "redis-1");
        assert.strictEqual(cfg.sshTimeoutSeconds, 60);
        assert.deepStrictEqual(
            cfg.nodes.map((n) => [n.name, n.sshUser, n.sshPort, n.privateIp]),
            [
                ["redis-1", "root", 22, "10.211.11.7"],
                ["redis-2", "root", 22, "10.211.11.8"],
                ["redis-3", "deploy", 2222, "10.211.11.9"],
            ],
        );
        assert.ok(cfg.nodes.every((n) => n.replicaPriority === 100));
    });

    it("takes the majority of five as the default quorum", () => {
        const raw = good();
        raw.nodes.push({ name: "redis-4", host: "10.211.11.10" }, { name: "redis-5", host: "10.211.11.11" });
        assert.strictEqual(parseStackConfig(raw).sentinel.quorum, 3);
    });

    // Each case breaks one thing in a valid config (in place) and names the message it must get.
    const cases: [string, (c: ReturnType<typeof good>) => unknown, RegExp][] = [
        ["no nodes", (c) => (c.nodes.length = 0), /^redis-ha:nodes must list at least one server/],
        ["malformed IP", (c) => (c.nodes[0].host = "10.0.0.300"), /^redis-ha:nodes\[0\]\.host must be an IPv4 address/],
        ["bad port", (c) => ((c.nodes[1] as { sshPort?: number }).sshPort = 70000), /^redis-ha:nodes\[1\]\.sshPort must be between 1 and 65535/],
        ["duplicate name", (c) => (c.nodes[1].name = "redis-1"), /^redis-ha:nodes\[1\]\.name duplicates nodes\[0\]\.name/],
        ["duplicate address", (c) => (c.nodes[1].host = "10.211.11.7"), /^redis-ha:nodes\[1\]\.host duplicates nodes\[0\]\.host/],
        ["bad name", (c) => (c.nodes[0].name = "Redis_1"), /^redis-ha:nodes\[0\]\.name must be 1-32 lower-case/],
        ["DNS host without privateIp", (c) => delete (c.nodes[2] as { privateIp?: string }).privateIp, /^redis-ha:nodes\[2\]\.privateIp is required when host is a DNS name/],
        ["unknown node key", (c) => ((c.nodes[0] as Record<string, unknown>).ip = "1.2.3.4"), /^redis-ha:nodes\[0\] Unrecognized key: "ip"/],
        ["short password", (c) => (c.adminPassword = "short"), /^redis-ha:adminPassword is too short: use at least 16 characters/],
        ["missing password", (c) => delete (c as { appPassword?: string }).appPassword, /^redis-ha:appPassword is required: pulumi config set --secret redis-ha:appPassword/],
        ["a quote in a password", (c) => (c.sentinelPassword = 'abc"def0123456789'), /^redis-ha:sentinelPassword must not contain spaces, quotes/],
        ["a password used twice", (c) => (c.appPassword = c.adminPassword), /^redis-ha:appPassword is the same as redis-ha:adminPassword/],
        ["not a key", (c) => (c.sshPrivateKey = "/home/me/.ssh/id_ed25519"), /^redis-ha:sshPrivateKey is not a private key: pass the file's contents/],
        ["bad redis port", (c) => (c.redis.port = 0), /^redis-ha:redis\.port must be between 1 and 65535/],
        ["no maxmemory", (c) => delete c.redis.maxmemory, /^redis-ha:redis\.maxmemory is required: set it below the server's RAM/],
        ["bad maxmemory", (c) => (c.redis.maxmemory = "2 GB"), /^redis-ha:redis\.maxmemory must be a size such as 512mb/],
        ["no persistence", (c) => Object.assign(c.redis, { appendonly: false, save: "" }), /^redis-ha:redis\.save .*master without persistence/],
        ["too many required replicas", (c) => (c.redis.minReplicasToWrite = 3), /^redis-ha:redis\.minReplicasToWrite is 3 but there are only 2 replicas/],
        ["redis.io packages", (c) => (c.redis.packageSource = "redis.io"), /^redis-ha:redis\.packageSource must be "distro"/],
        ["two sentinels", (c) => c.nodes.pop(), /^redis-ha:nodes has 2 server\(s\), but Sentinel needs at least 3 .*redis-ha:allowFewerThanThreeSentinels true/],
        ["an impossible quorum", (c) => (c.sentinel.quorum = 4), /^redis-ha:sentinel\.quorum is 4 but there are only 3 sentinels/],
        ["a bad master name", (c) => (c.sentinel.masterName = "my master"), /^redis-ha:sentinel\.masterName must be 1-64 letters/],
        ["an unknown initial master", (c) => Object.assign(c, { initialMaster: "redis-9" }), /^redis-ha:initialMaster names no node \(nodes: redis-1, redis-2, redis-3\)/],
        ["no promotable replica", (c) => c.nodes.forEach((n, i) => i > 0 && Object.assign(n, { replicaPriority: 0 })), /^redis-ha:nodes gives every replica replicaPriority 0/],
        ["bad THP mode", (c) => Object.assign(c, { kernel: { transparentHugePages: "always" } }), /^redis-ha:kernel\.transparentHugePages/],
    ];
    for (const [what, mutate, expected] of cases) {
        it(`rejects ${what}`, () => {
            const raw = good();
            mutate(raw);
            const problems = problemsOf(raw);
            assert.ok(problems.some((p) => expected.test(p)), `no problem matched ${expected}:\n${problems.join("\n")}`);
        });
    }

    it("allows fewer than three sentinels only when told to", () => {
        const raw = { ...good(), allowFewerThanThreeSentinels: true };
        raw.nodes.length = 1;
        const cfg = parseStackConfig(raw);
        assert.strictEqual(cfg.sentinel.quorum, 1);
    });

    it("reads the engine's raw config map and reports every problem at once", () => {
        const g = good();
        const all = {
            "redis-ha:nodes": JSON.stringify(g.nodes),
            "redis-ha:sshPrivateKey": KEY,
            "redis-ha:redis": JSON.stringify(g.redis),
            "redis-ha:adminPassword": "short",
            "redis-ha:replicationPassword": g.replicationPassword,
            "redis-ha:sentinelAuthPassword": g.sentinelAuthPassword,
            "redis-ha:sentinelPassword": g.sentinelPassword,
            "redis-ha:appPassword": g.appPassword,
            "redis-ha:bogus": "1",
            "other:key": "ignored",
        };
        assert.throws(() => parseAllConfig(all), (e: ConfigError) => {
            assert.strictEqual(e.problems.length, 2);
            assert.match(e.problems[0], /^redis-ha:bogus is not a known key .*pulumi config rm redis-ha:bogus/);
            assert.match(e.problems[1], /^redis-ha:adminPassword is too short/);
            return true;
        });
        const { "redis-ha:bogus": _bogus, ...known } = all;
        const ok = parseAllConfig({ ...known, "redis-ha:adminPassword": g.adminPassword, "redis-ha:sshTimeoutSeconds": "5", "redis-ha:runtime": "docker" });
        assert.strictEqual(ok.sshTimeoutSeconds, 5);
        assert.strictEqual(ok.runtime, "docker");
        assert.strictEqual(ok.docker.image, "redis:7.4.2");
    });
});

describe("stack config: the VIP proxy", () => {
    const withProxy = (proxy: Record<string, unknown>, extra: Record<string, unknown> = {}) => proxiedConfig(proxy, extra);

    it("accepts two proxy nodes with free VIPs and fills in defaults", () => {
        const cfg = parseStackConfig(withProxy({ nodes: ["a", "b"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }));
        assert.deepStrictEqual(
            [cfg.proxy.statsPort, cfg.proxy.virtualRouterId, cfg.proxy.readFallbackToMaster, cfg.proxy.checkIntervalMs, cfg.proxy.maxConnections],
            [8404, 51, true, 1000, 4000],
        );
    });

    const cases: [string, Record<string, unknown>, Record<string, unknown>, RegExp][] = [
        ["an unknown proxy node", { nodes: ["z"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }, {}, /^redis-ha:proxy\.nodes\[0\] names no node/],
        ["a missing VIP", { nodes: ["a"], writeVip: "10.1.0.100" }, {}, /^redis-ha:proxy\.readVip is required with proxy\.nodes/],
        ["a VIP a node uses", { nodes: ["a"], writeVip: "10.1.0.2", readVip: "10.1.0.101" }, {}, /^redis-ha:proxy\.writeVip is 10\.1\.0\.2, which a node already uses/],
        ["the same VIP twice", { nodes: ["a"], writeVip: "10.1.0.100", readVip: "10.1.0.100" }, {}, /^redis-ha:proxy\.readVip must differ from proxy\.writeVip/],
        ["no stats password", { nodes: ["a"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }, { statsPassword: undefined }, /^redis-ha:statsPassword is required with a proxy/],
        ["a reused password", { nodes: ["a"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }, { healthCheckPassword: "app-0123456789abcdef" }, /^redis-ha:healthCheckPassword is the same as redis-ha:appPassword/],
    ];
    for (const [what, proxy, extra, expected] of cases) {
        it(`rejects ${what}`, () => {
            assert.throws(() => parseStackConfig(withProxy(proxy, extra)), (e: ConfigError) => e.problems.some((p) => expected.test(p)) || assert.fail(e.problems.join("\n")));
        });
    }
});
