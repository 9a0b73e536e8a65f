// The stack config schema: what it accepts, the defaults it fills in, and the message each
// mistake gets (naming the key as `pulumi config` spells it, and the fix).
import * as assert from "assert";
import { ConfigError, parseAllConfig, parseStackConfig } from "../../components/config";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const good = () => ({
    nodes: [
        { name: "redis-1", host: "10.211.11.7" },
        { name: "redis-2", host: "10.211.11.8" },
        { name: "redis-3", host: "redis-3.example.net", privateIp: "10.211.11.9", sshUser: "deploy", sshPort: 2222 },
    ],
    sshPrivateKey: KEY,
    adminPassword: "0123456789abcdef",
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
        assert.strictEqual(cfg.sshTimeoutSeconds, 60);
        assert.deepStrictEqual(
            cfg.nodes.map((n) => [n.name, n.sshUser, n.sshPort, n.privateIp]),
            [
                ["redis-1", "root", 22, "10.211.11.7"],
                ["redis-2", "root", 22, "10.211.11.8"],
                ["redis-3", "deploy", 2222, "10.211.11.9"],
            ],
        );
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
        ["missing password", (c) => delete (c as { adminPassword?: string }).adminPassword, /^redis-ha:adminPassword is required: pulumi config set --secret/],
        ["not a key", (c) => (c.sshPrivateKey = "/home/me/.ssh/id_ed25519"), /^redis-ha:sshPrivateKey is not a private key: pass the file's contents/],
        ["bad redis port", (c) => ((c as Record<string, unknown>).redis = { port: 0 }), /^redis-ha:redis\.port must be between 1 and 65535/],
    ];
    for (const [what, mutate, expected] of cases) {
        it(`rejects ${what}`, () => {
            const raw = good();
            mutate(raw);
            const problems = problemsOf(raw);
            assert.ok(problems.some((p) => expected.test(p)), `no problem matched ${expected}:\n${problems.join("\n")}`);
        });
    }

    it("reads the engine's raw config map and reports every problem at once", () => {
        const all = {
            "redis-ha:nodes": JSON.stringify([{ name: "a", host: "10.0.0.1" }]),
            "redis-ha:sshPrivateKey": KEY,
            "redis-ha:adminPassword": "short",
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
        const ok = parseAllConfig({ ...known, "redis-ha:adminPassword": "0123456789abcdef", "redis-ha:sshTimeoutSeconds": "5" });
        assert.strictEqual(ok.sshTimeoutSeconds, 5);
    });
});
