// The stack config schema: what it accepts, the defaults it fills in, and the message each
// mistake gets (naming the key as `pulumi config` spells it, and the fix).
import * as assert from "assert";
import { ConfigError, majority, parseAllConfig, parseStackConfig, type ResolvedConfig } from "../../components/config";
import { configWarnings } from "../../components/config-warnings";
import { globCanMatchPrefix } from "../../components/glob";
import { listenSettings, redisSettings, sentinelPingPeriodMs } from "../../components/render";
import { hostKeyFingerprint } from "../../components/ssh";
import { issueCa, issueCert } from "../../components/tls-certs";
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

/** A test per case: breaks a fresh valid config in place and expects a problem matching the pattern. */
function itRejects<T extends Record<string, unknown>>(make: () => T, cases: [string, (c: T) => unknown, RegExp][]) {
    for (const [what, mutate, expected] of cases) {
        it(`rejects ${what}`, () => {
            const raw = make();
            mutate(raw);
            const problems = problemsOf(raw);
            assert.ok(problems.some((p) => expected.test(p)), `no problem matched ${expected}:\n${problems.join("\n")}`);
        });
    }
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

    it("counts a majority as more than half", () => {
        assert.deepStrictEqual([1, 2, 3, 4, 5, 6].map(majority), [1, 2, 2, 3, 3, 4]);
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
        ["a space and an é in a password", (c) => (c.sentinelPassword = "abc def\u00e9 0123456789"), /^redis-ha:sentinelPassword contains characters other than printable ASCII without spaces: ' ', 'é'; use letters, digits and punctuation only/],
        ["a tab in a proxy password", (c) => Object.assign(c, { statsPassword: "stats\t0123456789abcdef" }), /^redis-ha:statsPassword contains characters other than printable ASCII without spaces: U\+0009;/],
        ["a password used twice", (c) => (c.appPassword = c.adminPassword), /^redis-ha:appPassword is the same as redis-ha:adminPassword/],
        ["not a key", (c) => (c.sshPrivateKey = "/home/me/.ssh/id_ed25519"), /^redis-ha:sshPrivateKey is not a private key: pass the file's contents/],
        ["bad redis port", (c) => (c.redis.port = 0), /^redis-ha:redis\.port must be between 1 and 65535/],
        ["no maxmemory", (c) => delete c.redis.maxmemory, /^redis-ha:redis\.maxmemory is required: set it below the server's RAM/],
        ["bad maxmemory", (c) => (c.redis.maxmemory = "2 GB"), /^redis-ha:redis\.maxmemory must be a size such as 512mb/],
        ["no persistence", (c) => Object.assign(c.redis, { appendonly: false, save: "" }), /^redis-ha:redis\.save .*master without persistence/],
        ["too many required replicas", (c) => (c.redis.minReplicasToWrite = 3), /^redis-ha:redis\.minReplicasToWrite is 3 but there are only 2 replicas/],
        ["a package source that is a word", (c) => Object.assign(c.redis, { packageSource: "distro" }), /^redis-ha:redis\.packageSource /],
        ["an apt source without its repository", (c) => Object.assign(c.redis, { packageSource: { type: "apt" } }), /^redis-ha:redis\.packageSource\.url is required with packageSource\.type apt/],
        ["an apt source with a key that is not one", (c) => Object.assign(c.redis, { packageSource: { type: "apt", url: "https://packages.redis.io/deb", suite: "bookworm", signingKey: "ssh-ed25519 AAAA" } }), /^redis-ha:redis\.packageSource\.signingKey must be an ASCII-armored public key/],
        ["a repository without type apt", (c) => Object.assign(c.redis, { packageSource: { url: "https://packages.redis.io/deb" } }), /^redis-ha:redis\.packageSource\.url is set but packageSource\.type is "debian"/],
        ["a repository URL that is not one", (c) => Object.assign(c.redis, { packageSource: { type: "apt", url: "packages.redis.io", suite: "bookworm", signingKey: "x" } }), /^redis-ha:redis\.packageSource\.url must be an http/],
        ["two sentinels", (c) => c.nodes.pop(), /^redis-ha:nodes has 2 server\(s\), but Sentinel needs at least 3 .*redis-ha:allowFewerThanThreeSentinels true/],
        ["an impossible quorum", (c) => (c.sentinel.quorum = 4), /^redis-ha:sentinel\.quorum is 4 but there are only 3 sentinels/],
        ["a bad master name", (c) => (c.sentinel.masterName = "my master"), /^redis-ha:sentinel\.masterName must be 1-64 letters/],
        ["an unknown initial master", (c) => Object.assign(c, { initialMaster: "redis-9" }), /^redis-ha:initialMaster names no node \(nodes: redis-1, redis-2, redis-3\)/],
        ["no promotable replica", (c) => c.nodes.forEach((n, i) => i > 0 && Object.assign(n, { replicaPriority: 0 })), /^redis-ha:nodes gives every replica replicaPriority 0/],
        ["bad THP mode", (c) => Object.assign(c, { kernel: { transparentHugePages: "always" } }), /^redis-ha:kernel\.transparentHugePages/],
        ["an unknown node to recover from", (c) => Object.assign(c, { recoverFrom: "redis-9" }), /^redis-ha:recoverFrom names no node \(nodes: redis-1, redis-2, redis-3\)/],
        ["a majority of nodes down", (c) => c.nodes.slice(1).forEach((n) => Object.assign(n, { down: true })), /^redis-ha:nodes marks redis-2, redis-3 down, leaving 1 of 3 sentinels: less than a majority \(2\)/],
        ["down as a string", (c) => Object.assign(c.nodes[0], { down: "yes" }), /^redis-ha:nodes\[0\]\.down must be true or false/],
        ["a previous password equal to the new one", (c) => Object.assign(c, { previousPasswords: { appPassword: c.appPassword } }), /^redis-ha:previousPasswords\.appPassword is the same as redis-ha:appPassword: set the new password in redis-ha:appPassword and keep the old one here/],
        ["a previous password another user has now", (c) => Object.assign(c, { previousPasswords: { appPassword: c.adminPassword } }), /^redis-ha:previousPasswords\.appPassword is the same as redis-ha:adminPassword/],
        ["a short previous password", (c) => Object.assign(c, { previousPasswords: { adminPassword: "short" } }), /^redis-ha:previousPasswords\.adminPassword is too short/],
        ["a previous password of an unknown key", (c) => Object.assign(c, { previousPasswords: { statsPassword: "stats-old-0123456789" } }), /^redis-ha:previousPasswords Unrecognized key: "statsPassword"/],
        ["a previous health-check password without a proxy", (c) => Object.assign(c, { previousPasswords: { healthCheckPassword: "hc-old-0123456789abc" } }), /^redis-ha:previousPasswords\.healthCheckPassword is set but there is no proxy/],
        ["the same SSH key as previous", (c) => Object.assign(c, { previousSshPrivateKey: c.sshPrivateKey }), /^redis-ha:previousSshPrivateKey is the same as redis-ha:sshPrivateKey/],
        ["a package version with docker", (c) => Object.assign(c, { runtime: "docker", redis: { ...c.redis, packageVersion: "5:7.0.15-1~deb12u10" } }), /^redis-ha:redis\.packageVersion applies to the packages runtime only/],
        ["metrics without their password", (c) => Object.assign(c, { metrics: { enabled: true } }), /^redis-ha:metricsPassword is required with metrics\.enabled/],
        ["metrics on the Sentinel port", (c) => Object.assign(c, { metrics: { enabled: true, port: 26379 }, metricsPassword: "metrics-0123456789abcdef" }), /^redis-ha:metrics\.port is 26379, the same as redis-ha:sentinel\.port/],
        ["a metrics password used twice", (c) => Object.assign(c, { metrics: { enabled: true }, metricsPassword: c.appPassword }), /^redis-ha:metricsPassword is the same as redis-ha:appPassword/],
        ["an unknown server", (c) => Object.assign(c.redis, { server: "keydb" }), /^redis-ha:redis\.server must be "redis" or "valkey"/],
        ["valkey with docker", (c) => Object.assign(c, { runtime: "docker", redis: { ...c.redis, server: "valkey" } }), /^redis-ha:redis\.server is valkey, which the packages runtime runs/],
        ["a package version that is not one", (c) => (c.redis.packageVersion = "latest"), /^redis-ha:redis\.packageVersion must be a Debian version such as 5:7\.0\.15-1~deb12u10/],
        ["no databases", (c) => (c.redis.databases = 0), /^redis-ha:redis\.databases must be at least 1/],
        ["a rolling restart that is not a counter", (c) => Object.assign(c, { rollingRestart: -1 }), /^redis-ha:rollingRestart must be at least 0/],
    ];
    itRejects(good, cases);

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

// Real keys made with `ssh-keygen -t ed25519|ecdsa -N '' -f /tmp/x`; the fingerprints are what
// `ssh-keygen -lf /tmp/x.pub` printed for them.
const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOOaIVDC3dJuk10VwKe2XCXoOLJ5voWOGEizrYicAmMC root@redis-1";
const ED25519_FINGERPRINT = "SHA256:qorJTp7uWyhIaFdCej6ayWwHEcQEW5EumZHdHwJ7B+Y";
const ECDSA =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB5EjrSmFRHNxd36IiwLvxiovL3weOxcn3CCQ/ObQwQRTnfAANJVNoc73iPvEM5e+4Ye6PofWV5hN9A56D27O/8=";
const ECDSA_FINGERPRINT = "SHA256:navDGPxkTMVVjnQEIvc+Rc2BdCjcXiKYzOl76U10wSk";

describe("hostKeyFingerprint", () => {
    const found: [string, string, string][] = [
        ["a public key line", ED25519, ED25519_FINGERPRINT],
        ["a public key without comment", ED25519.split(" ").slice(0, 2).join(" "), ED25519_FINGERPRINT],
        ["a known_hosts line", `10.0.0.1 ${ED25519}`, ED25519_FINGERPRINT],
        ["a known_hosts line with a port", `[redis-1.example.net]:2222 ${ECDSA}`, ECDSA_FINGERPRINT],
        ["the fingerprint itself", ` ${ED25519_FINGERPRINT}\n`, ED25519_FINGERPRINT],
        ["ssh-keygen -lf's output", `256 ${ECDSA_FINGERPRINT} no comment (ECDSA)`, ECDSA_FINGERPRINT],
    ];
    for (const [what, line, fingerprint] of found) it(`reads ${what}`, () => assert.strictEqual(hostKeyFingerprint(line), fingerprint));

    const refused: [string, string][] = [
        ["an empty string", ""],
        ["a cut key", ED25519.slice(0, 60)],
        ["a key under another key type", ED25519.replace("ssh-ed25519", "ssh-rsa")],
        ["a blob that is not base64", "ssh-ed25519 AAAA$$$$"],
        ["a short fingerprint", "SHA256:qorJTp7uWyhIaFdCej6ayWwHEcQEW5EumZHdHwJ7B"],
        ["a fingerprint whose last character cannot end 32 bytes", "SHA256:qorJTp7uWyhIaFdCej6ayWwHEcQEW5EumZHdHwJ7B+Z"],
        ["an MD5 fingerprint", "MD5:4b:ad:10:20:30:40:50:60:70:80:90:a0:b0:c0:d0:e0"],
        ["a private key", KEY],
    ];
    for (const [what, line] of refused) it(`finds nothing in ${what}`, () => assert.strictEqual(hostKeyFingerprint(line), undefined));
});

describe("globCanMatchPrefix", () => {
    const table: [string, boolean][] = [
        ["*", true],
        ["__*", true],
        ["_?sentinel__:*", true],
        ["__sentinel__:hello", true],
        ["__sentinel__:", true],
        ["[_]_sentinel*", true],
        ["\\_*", true],
        ["[^a]*", true],
        ["[a-z_]*", true],
        ["[z-_]*", true], // Redis swaps a reversed range: '_'..'z'
        ["*:hello", true],
        ["?*", true],
        ["[\\_]_sentinel__:*", true],
        ["__sentinel__:[]*x", false], // an empty class matches nothing
        ["app:*", false],
        ["__sentinel_", false],
        ["__sentinel__", false],
        ["_?sentinel__:", true],
        ["?", false],
        ["[^_]*", false],
        ["[a-z]*", false],
        ["\\*", false],
        ["__sentinel__;*", false],
        ["[_", false], // unterminated: the class [_] and nothing after it
        ["", false],
    ];
    for (const [pattern, expected] of table) {
        it(`${expected ? "matches" : "cannot match"} __sentinel__:… with ${JSON.stringify(pattern)}`, () => assert.strictEqual(globCanMatchPrefix(pattern, "__sentinel__:"), expected));
    }
    it("handles the degenerate cases", () => {
        assert.strictEqual(globCanMatchPrefix("[_", "_"), true);
        assert.strictEqual(globCanMatchPrefix("[", "x"), false);
        assert.strictEqual(globCanMatchPrefix("", ""), true);
        assert.strictEqual(globCanMatchPrefix("[]", ""), false);
        assert.strictEqual(globCanMatchPrefix("\\", "\\"), true);
    });
});

describe("stack config: keys added for hardening", () => {
    it("fills in the new keys' defaults", () => {
        const cfg = parseStackConfig(good());
        assert.deepStrictEqual(cfg.redis.appChannels, ["*"]);
        assert.strictEqual(cfg.sentinel.legacyClientAuth, false);
        assert.strictEqual(cfg.proxy.network, undefined);
        assert.ok(cfg.nodes.every((n) => n.hostKey === undefined));
    });

    it("resolves nodes[].hostKey to its fingerprint", () => {
        const raw = good();
        Object.assign(raw.nodes[0], { hostKey: `10.211.11.7 ${ED25519}` });
        Object.assign(raw.nodes[1], { hostKey: ECDSA_FINGERPRINT });
        assert.deepStrictEqual(
            parseStackConfig(raw).nodes.map((n) => n.hostKey),
            [ED25519_FINGERPRINT, ECDSA_FINGERPRINT, undefined],
        );
    });

    it("accepts any printable ASCII in passwords", () => {
        const raw = { ...good(), adminPassword: `!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~0Az` };
        assert.strictEqual(parseStackConfig(raw).adminPassword, raw.adminPassword);
    });

    it("accepts pinned images", () => {
        for (const image of [
            "redis:7.4.2",
            "redis:7.4.2-bookworm",
            "valkey/valkey:8.1.1-alpine",
            "registry.local:5000/team/redis:7.2.5",
            `redis@sha256:${"a".repeat(64)}`,
            `redis:7.4@sha256:${"0".repeat(64)}`,
        ]) {
            assert.strictEqual(parseStackConfig({ ...good(), docker: { image } }).docker.image, image);
        }
    });

    it("accepts channel patterns that leave Sentinel's channels alone", () => {
        const raw = good();
        raw.redis.appChannels = ["*", "app:*", "events.?", "[a-z]*"];
        assert.deepStrictEqual(parseStackConfig(raw).redis.appChannels, raw.redis.appChannels);
    });

    it("lets the stats port equal the Redis port without a proxy, and the proxy port always", () => {
        const raw = { ...good(), proxy: { statsPort: 6379, port: 6379 } };
        assert.strictEqual(parseStackConfig(raw).proxy.statsPort, 6379);
    });

    it("accepts the lab's fast Sentinel timings", () => {
        const raw = good();
        raw.sentinel = { downAfterMilliseconds: 1000, failoverTimeout: 10000 };
        assert.strictEqual(parseStackConfig(raw).sentinel.failoverTimeout, 10000);
    });

    it("has sentinels ping every tenth of down-after, but every 300 ms at most often and every second at least", () => {
        const period = (downAfterMilliseconds: number) => sentinelPingPeriodMs(parseStackConfig({ ...good(), sentinel: { downAfterMilliseconds } }));
        // 5 periods (how fresh a replica's INFO must be to be promoted) must outlast Sentinel's 1 s INFO reads.
        assert.deepStrictEqual([1000, 2000, 5000, 30000].map(period), [300, 300, 500, 1000]);
    });

    const cases: [string, (c: ReturnType<typeof good>) => unknown, RegExp][] = [
        ["a host key that is none", (c) => Object.assign(c.nodes[1], { hostKey: "ssh-ed25519 AAAA" }), /^redis-ha:nodes\[1\]\.hostKey is not an SSH host key: give its fingerprint \(SHA256:…, from ssh-keygen -lf .*ssh-keyscan/],
        ["a shell-unfriendly SSH user", (c) => (c.nodes[2].sshUser = "deploy;id"), /^redis-ha:nodes\[2\]\.sshUser must be a plain user name such as deploy/],
        ["an upper-case SSH user", (c) => (c.nodes[2].sshUser = "Deploy"), /^redis-ha:nodes\[2\]\.sshUser must be a plain user name such as deploy/],
        ["a loopback privateIp", (c) => (c.nodes[2].privateIp = "127.0.0.9"), /^redis-ha:nodes\[2\]\.privateIp is 127\.0\.0\.9, a loopback address \(127\.0\.0\.0\/8\), which the other nodes cannot reach; set nodes\[2\]\.privateIp to the server's address on the private network/],
        ["a loopback host used as privateIp", (c) => (c.nodes[0].host = "127.0.0.1"), /^redis-ha:nodes\[0\]\.host is 127\.0\.0\.1, a loopback address .*; set nodes\[0\]\.privateIp to the server's address/],
        ["an unspecified privateIp", (c) => (c.nodes[2].privateIp = "0.0.0.0"), /^redis-ha:nodes\[2\]\.privateIp is 0\.0\.0\.0, the unspecified address, .*set nodes\[2\]\.privateIp/],
        ["a broadcast privateIp", (c) => (c.nodes[2].privateIp = "255.255.255.255"), /^redis-ha:nodes\[2\]\.privateIp is 255\.255\.255\.255, the broadcast address, /],
        ["a link-local privateIp", (c) => (c.nodes[2].privateIp = "169.254.3.4"), /^redis-ha:nodes\[2\]\.privateIp is 169\.254\.3\.4, a link-local address \(169\.254\.0\.0\/16\), /],
        ["a multicast privateIp", (c) => (c.nodes[2].privateIp = "239.1.2.3"), /^redis-ha:nodes\[2\]\.privateIp is 239\.1\.2\.3, a multicast address \(224\.0\.0\.0\/4\), /],
        ["Sentinel on the Redis port", (c) => (c.sentinel.port = 6379), /^redis-ha:sentinel\.port is 6379, the same as redis-ha:redis\.port: .*give sentinel\.port another port/],
        ["a failover timeout within down-after", (c) => Object.assign(c.sentinel, { downAfterMilliseconds: 5000, failoverTimeout: 5000 }), /^redis-ha:sentinel\.failoverTimeout is 5000 ms, not more than redis-ha:sentinel\.downAfterMilliseconds \(5000 ms\).*make it larger/],
        ["the channel pattern __*", (c) => (c.redis.appChannels = ["app:*", "__*"]), /^redis-ha:redis\.appChannels\[1\] is __\*, which can match Sentinel's own channels \(__sentinel__:\*\): .*fake master; use a prefix of your own, such as app:\*/],
        ["a Sentinel channel by name", (c) => (c.redis.appChannels = ["__sentinel__:hello"]), /^redis-ha:redis\.appChannels\[0\] is __sentinel__:hello, which can match Sentinel's own channels/],
        ["a channel pattern with a space", (c) => (c.redis.appChannels = ["app *"]), /^redis-ha:redis\.appChannels\[0\] must be a channel pattern without spaces, such as app:\*/],
        ["an empty channel pattern", (c) => (c.redis.appChannels = [""]), /^redis-ha:redis\.appChannels\[0\] must be a channel pattern without spaces/],
        ["a non-boolean legacyClientAuth", (c) => (c.sentinel.legacyClientAuth = "yes"), /^redis-ha:sentinel\.legacyClientAuth must be true or false/],
    ];
    const images: [string, RegExp][] = [
        ["redis", /^redis-ha:docker\.image must name a tag or digest: redis alone means the tag latest, which floats .*pin a full version such as redis:7\.4\.2/],
        ["redis:latest", /^redis-ha:docker\.image must pin a version: the tag latest floats .*pin a full version such as redis:7\.4\.2/],
        ["redis:LATEST", /^redis-ha:docker\.image must pin a version: the tag LATEST floats/],
        ["redis:7", /^redis-ha:docker\.image must pin a version: the tag 7 floats .*or a digest such as redis@sha256:/],
        ["redis:7.4", /^redis-ha:docker\.image must pin a version: the tag 7\.4 floats/],
        ["redis:alpine", /^redis-ha:docker\.image must pin a version: the tag alpine floats/],
        ["Redis:7.4.2", /^redis-ha:docker\.image must be an image such as redis:7\.4\.2/],
        ["redis@sha256:abc", /^redis-ha:docker\.image must be an image such as redis:7\.4\.2 or redis@sha256:/],
    ];
    for (const [image, expected] of images) cases.push([`the image ${image}`, (c) => Object.assign(c, { docker: { image } }), expected]);
    itRejects(good, cases);
});

describe("stack config: the proxy's network and ports", () => {
    const vips = { nodes: ["a", "b"], writeVip: "10.1.0.100", readVip: "10.1.0.101" };

    it("accepts VIPs elsewhere in a wider proxy.network", () => {
        const cfg = parseStackConfig(proxiedConfig({ ...vips, network: "10.1.0.0/16", writeVip: "10.1.7.100" }));
        assert.deepStrictEqual([cfg.proxy.network, cfg.proxy.writeVip], ["10.1.0.0/16", "10.1.7.100"]);
    });

    it("needs no proxy.network for proxy nodes on one /24, whatever the other nodes' addresses", () => {
        const raw = proxiedConfig(vips);
        raw.nodes[2].host = "10.9.0.3";
        assert.strictEqual(parseStackConfig(raw).proxy.network, undefined);
    });

    const cases: [string, Record<string, unknown>, (c: ReturnType<typeof proxiedConfig>) => void, RegExp][] = [
        ["a VIP outside the proxy nodes' /24", { ...vips, readVip: "10.1.1.101" }, () => {}, /^redis-ha:proxy\.readVip is 10\.1\.1\.101, outside the proxy nodes' network 10\.1\.0\.0\/24: .*pulumi config set --path redis-ha:proxy\.network 10\.1\.0\.0\/23/],
        ["proxy nodes on different /24s", vips, (c) => (c.nodes[1].host = "10.1.4.2"), /^redis-ha:proxy\.network is required: the proxy nodes' private addresses \(a 10\.1\.0\.1, b 10\.1\.4\.2\) are not in one \/24.*pulumi config set --path redis-ha:proxy\.network 10\.1\.0\.0\/21/],
        ["a VIP outside proxy.network", { ...vips, network: "10.1.0.0/25", writeVip: "10.1.0.200" }, () => {}, /^redis-ha:proxy\.writeVip is 10\.1\.0\.200, outside redis-ha:proxy\.network \(10\.1\.0\.0\/25\); pick a free address in it/],
        ["a proxy node outside proxy.network", { ...vips, network: "10.1.0.0/24" }, (c) => (c.nodes[1].host = "10.2.0.2"), /^redis-ha:proxy\.nodes\[1\] is b, whose private address 10\.2\.0\.2 is outside redis-ha:proxy\.network \(10\.1\.0\.0\/24\);.*fix redis-ha:proxy\.network or the node's privateIp/],
        ["a VIP on the network address", { ...vips, network: "10.1.0.0/24", writeVip: "10.1.0.0" }, () => {}, /^redis-ha:proxy\.writeVip is 10\.1\.0\.0, the network address of redis-ha:proxy\.network \(10\.1\.0\.0\/24\), which clients cannot reach; pick a free address/],
        ["a VIP on the broadcast address", { ...vips, network: "10.1.0.0/24", readVip: "10.1.0.255" }, () => {}, /^redis-ha:proxy\.readVip is 10\.1\.0\.255, the broadcast address of redis-ha:proxy\.network \(10\.1\.0\.0\/24\)/],
        ["a node on proxy.network's broadcast address", { ...vips, network: "10.1.0.0/30" }, (c) => (c.nodes[2].host = "10.1.0.3"), /^redis-ha:nodes\[2\]\.host is 10\.1\.0\.3, the broadcast address of redis-ha:proxy\.network \(10\.1\.0\.0\/30\)/],
        ["a loopback VIP", { ...vips, writeVip: "127.0.0.100" }, () => {}, /^redis-ha:proxy\.writeVip is 127\.0\.0\.100, a loopback address \(127\.0\.0\.0\/8\), which clients cannot reach; pick a free address on the proxy nodes' network/],
        ["a multicast VIP", { ...vips, readVip: "224.0.0.18" }, () => {}, /^redis-ha:proxy\.readVip is 224\.0\.0\.18, a multicast address/],
        ["a network that is not one", { ...vips, network: "10.1.0.0" }, () => {}, /^redis-ha:proxy\.network must be an IPv4 network such as 10\.211\.99\.0\/24/],
        ["a network too wide", { ...vips, network: "10.0.0.0/7" }, () => {}, /^redis-ha:proxy\.network has a \/7 prefix; use \/8 to \/30/],
        ["a network too narrow", { ...vips, network: "10.1.0.0/31" }, () => {}, /^redis-ha:proxy\.network has a \/31 prefix; use \/8 to \/30/],
        ["a network with host bits", { ...vips, network: "10.1.0.1/24" }, () => {}, /^redis-ha:proxy\.network has host bits set; write the network itself, 10\.1\.0\.0\/24/],
        ["the stats page on the Redis port", { ...vips, statsPort: 6379 }, () => {}, /^redis-ha:proxy\.statsPort is 6379, the same as redis-ha:redis\.port: .*give proxy\.statsPort another port/],
        ["the stats page on the Sentinel port", { ...vips, statsPort: 26379 }, () => {}, /^redis-ha:proxy\.statsPort is 26379, the same as redis-ha:sentinel\.port: .*give proxy\.statsPort another port/],
    ];
    itRejects(
        () => proxiedConfig({}),
        cases.map(([what, proxy, mutate, expected]) => [what, (c) => mutate(Object.assign(c, { proxy })), expected]),
    );
});

describe("configWarnings", () => {
    const SECRET_KEYS = ["sshPrivateKey", "adminPassword", "replicationPassword", "sentinelAuthPassword", "sentinelPassword", "appPassword", "healthCheckPassword", "statsPassword"];
    const allSecret = (key: string) => SECRET_KEYS.map((k) => `redis-ha:${k}`).includes(key);
    const warningsOf = (cfg: ResolvedConfig, isSecret = allSecret) => configWarnings(cfg, isSecret);
    const withRaw = (mutate: (c: ReturnType<typeof good>) => unknown) => {
        const raw = good();
        mutate(raw);
        return parseStackConfig(raw);
    };

    it("has nothing to say about the defaults, nor about the lab's one-second down-after", () => {
        assert.deepStrictEqual(warningsOf(parseStackConfig(good())), []);
        assert.deepStrictEqual(warningsOf(withRaw((c) => (c.sentinel = { downAfterMilliseconds: 1000, failoverTimeout: 10000 }))), []);
        assert.deepStrictEqual(warningsOf(parseStackConfig(proxiedConfig({ nodes: ["a"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }))), []);
    });

    const cases: [string, () => ResolvedConfig, ((key: string) => boolean) | undefined, RegExp][] = [
        ["a quorum below a majority", () => withRaw((c) => (c.sentinel.quorum = 1)), undefined, /^redis-ha:sentinel\.quorum is 1 of 3 sentinels, less than a majority \(2\): a minority.*could agree it is down; set it to 2/],
        ["every replica required for writes", () => withRaw((c) => (c.redis.minReplicasToWrite = 2)), undefined, /^redis-ha:redis\.minReplicasToWrite is 2, every replica: with one replica down or lagging the master refuses all writes; set it to 1/],
        [
            "the one replica of two required for writes",
            () => parseStackConfig({ ...good(), nodes: good().nodes.slice(0, 2), allowFewerThanThreeSentinels: true }),
            undefined,
            /^redis-ha:redis\.minReplicasToWrite is 1, every replica: .*set it to 0 \(which turns the check off\)/,
        ],
        ["a maxmemory without unit", () => withRaw((c) => (c.redis.maxmemory = "100000")), undefined, /^redis-ha:redis\.maxmemory is 100000 without a unit, i\.e\. bytes; .*write the unit, e\.g\. 100000mb or 2gb/],
        ["a down-after under a second", () => withRaw((c) => (c.sentinel.downAfterMilliseconds = 999)), undefined, /^redis-ha:sentinel\.downAfterMilliseconds is 999, under a second: .*use 1000 or more/],
        ["a password in clear text", () => parseStackConfig(good()), (k) => k !== "redis-ha:appPassword", /^redis-ha:appPassword is stored in the stack file in clear text; encrypt it: pulumi config set --secret redis-ha:appPassword /],
        ["a proxy password in clear text", () => parseStackConfig(proxiedConfig({ nodes: ["a"], writeVip: "10.1.0.100", readVip: "10.1.0.101" })), (k) => k !== "redis-ha:statsPassword", /^redis-ha:statsPassword is stored in the stack file in clear text; encrypt it: pulumi config set --secret redis-ha:statsPassword /],
        ["the SSH key in clear text", () => parseStackConfig(good()), (k) => k !== "redis-ha:sshPrivateKey", /^redis-ha:sshPrivateKey is stored in the stack file in clear text; encrypt it: pulumi config set --secret redis-ha:sshPrivateKey /],
        ["legacy client auth", () => withRaw((c) => (c.sentinel.legacyClientAuth = true)), undefined, /^redis-ha:sentinel\.legacyClientAuth is true: Sentinel's default user stays on .*then pulumi config set --path redis-ha:sentinel\.legacyClientAuth false/],
        ["old passwords still accepted", () => withRaw((c) => Object.assign(c, { previousPasswords: { appPassword: "app-old-0123456789ab", adminPassword: "adm-old-0123456789ab" } })), () => true, /^redis-ha:previousPasswords still lets in the old adminPassword, appPassword: once every application uses the new outputs, pulumi config rm redis-ha:previousPasswords/],
        ["an old SSH key still authorised", () => withRaw((c) => Object.assign(c, { previousSshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nold\n-----END OPENSSH PRIVATE KEY-----\n" })), () => true, /^redis-ha:previousSshPrivateKey is still authorised on the servers: once this run is done, pulumi config rm redis-ha:previousSshPrivateKey/],
    ];
    for (const [what, cfg, isSecret, expected] of cases) {
        it(`warns about ${what}`, () => {
            const warnings = warningsOf(cfg(), isSecret);
            assert.strictEqual(warnings.length, 1, warnings.join("\n"));
            assert.match(warnings[0], expected);
        });
    }

    it("does not ask for proxy passwords that are not set", () => {
        assert.deepStrictEqual(warningsOf(parseStackConfig(good()), (k) => !k.endsWith("statsPassword") && !k.endsWith("healthCheckPassword")), []);
    });
});

describe("stack config: TLS", () => {
    const withTls = (tls: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ ...good(), tls, ...extra });

    it("is off by default; on, Redis and Sentinel listen with TLS only, on their usual ports", () => {
        assert.deepStrictEqual(parseStackConfig(good()).tls, { enabled: false, authClients: false, validityDays: 365, renewBeforeDays: 30 });
        assert.deepStrictEqual(listenSettings(parseStackConfig(good()), 6379), ["port 6379"]);
        const cfg = parseStackConfig(withTls({ enabled: true }));
        const lines = listenSettings(cfg, 26379);
        assert.deepStrictEqual(lines.slice(0, 2), ["port 0", "tls-port 26379"]);
        assert.ok(lines.includes("tls-replication yes") && lines.includes("tls-auth-clients no"), lines.join("\n"));
        assert.ok(redisSettings(cfg, cfg.nodes[0]).includes("tls-port 6379"));
        assert.ok(listenSettings(parseStackConfig(withTls({ enabled: true, authClients: true })), 6379).includes("tls-auth-clients yes"));
    });

    itRejects(() => withTls({ enabled: true }), [
        ["renewal that would come at every run", (c) => (c.tls = { enabled: true, validityDays: 30, renewBeforeDays: 30 }), /^redis-ha:tls\.renewBeforeDays is 30, not less than redis-ha:tls\.validityDays \(30\)/],
        ["TLS with the docker runtime", (c) => Object.assign(c, { runtime: "docker" }), /^redis-ha:tls\.enabled is true, which the packages runtime supports only so far/],
        ["TLS with the metrics exporter", (c) => Object.assign(c, { metrics: { enabled: true }, metricsPassword: "metrics-password-0123456789" }), /^redis-ha:tls\.enabled is true together with metrics\.enabled/],
        ["an unknown TLS key", (c) => (c.tls = { enabled: true, allowPlaintext: true }), /^redis-ha:tls /],
    ]);
});

describe("stack config: TLS certificates brought by the user", () => {
    let own: { ca: string; nodes: Record<string, { cert: string; key: string }>; clients?: Record<string, { cert: string; key: string }> };
    let stranger: { cert: string; key: string };
    before(async () => {
        const ca = await issueCa("own CA", 30);
        const nodes = Object.fromEntries(await Promise.all(good().nodes.map(async (n) => [n.name, await issueCert(ca, { name: n.name, ips: [(n as { privateIp?: string }).privateIp ?? n.host] }, 20)] as const)));
        own = { ca: ca.cert, nodes: Object.fromEntries(Object.entries(nodes).map(([k, v]) => [k, { cert: v.cert, key: v.key }])) };
        const other = await issueCa("other CA", 30);
        stranger = await issueCert(other, { name: "x", ips: [good().nodes[0].host] }, 20);
    });
    const withOwn = (certs: unknown, tls: Record<string, unknown> = { enabled: true }) => ({ ...good(), tls, tlsCertificates: typeof certs === "string" ? certs : JSON.stringify(certs) });
    const first = () => good().nodes[0].name;

    it("accepts a CA and a certificate per node that names the node's address", () => {
        assert.deepStrictEqual(problemsOf(withOwn(own)), []);
    });

    it("rejects what would not work, naming the node and the fix", () => {
        const cases: [unknown, Record<string, unknown> | undefined, RegExp][] = [
            ["{not json", undefined, /^redis-ha:tlsCertificates is not JSON/],
            [own, { enabled: false }, /^redis-ha:tlsCertificates is set but tls\.enabled is false/],
            [{ ...own, nodes: { ...own.nodes, [first()]: undefined } }, undefined, new RegExp(`^redis-ha:tlsCertificates\\.nodes has no certificate for node ${first()}`)],
            [{ ...own, nodes: { ...own.nodes, [first()]: { cert: stranger.cert, key: stranger.key } } }, undefined, new RegExp(`^redis-ha:tlsCertificates\\.nodes\\.${first()} cert is not signed by the CA`)],
            [{ ...own, nodes: { ...own.nodes, [first()]: { cert: own.nodes[first()].cert, key: stranger.key } } }, undefined, /key does not belong to cert/],
            [{ ...own, nodes: { ...own.nodes, [first()]: own.nodes[good().nodes[1].name] } }, undefined, /cert does not name 10\.\S+ in its subjectAltName/],
            [{ ...own, nodes: { ...own.nodes, ghost: own.nodes[first()] } }, undefined, /^redis-ha:tlsCertificates\.nodes\.ghost names no node/],
            [own, { enabled: true, authClients: true }, /^redis-ha:tlsCertificates\.clients has no app certificate/],
        ];
        for (const [certs, tls, expected] of cases) {
            const problems = problemsOf(withOwn(certs, tls));
            assert.ok(problems.some((p) => expected.test(p)), `no problem matched ${expected}:\n${problems.join("\n")}`);
        }
    });

    it("warns while a certificate of the user's is within renewBeforeDays", () => {
        const cfg = parseStackConfig(withOwn(own, { enabled: true, validityDays: 365, renewBeforeDays: 25 }));
        const warnings = configWarnings(cfg, () => true).filter((w) => w.startsWith("redis-ha:tlsCertificates"));
        assert.strictEqual(warnings.length, good().nodes.length, warnings.join("\n"));
        assert.match(warnings[0], /ends on .*within tls\.renewBeforeDays \(25\): issue a new one/);
        assert.deepStrictEqual(configWarnings(parseStackConfig(withOwn(own, { enabled: true, renewBeforeDays: 10 })), () => true).filter((w) => w.startsWith("redis-ha:tlsCertificates")), []);
    });
});
