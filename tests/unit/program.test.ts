// The program's resources under Pulumi mocks: what is created per server, what each command
// runs, and where secrets go. Fast structure checks; tests/e2e proves the same for real.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { script } from "../../components/assets";
import { unpackScript } from "../../components/remote-command";

import { KEY } from "./fixtures";
import { isSecret, outputOf, plain, recorded as all, type Recorded } from "./mocks";

/** A script input's text: unwrapped from its secret and unpacked. */
const text = (v: unknown) => unpackScript(plain(v) as string | undefined);

const PASSWORDS = {
    adminPassword: "unit-admin-0123456789",
    replicationPassword: "unit-replication-0123456789",
    sentinelAuthPassword: "unit-sentinel-auth-0123456789",
    sentinelPassword: "unit-sentinel-0123456789",
    appPassword: "unit-app-0123456789",
};
pulumi.runtime.setAllConfig(
    {
        // Example addresses: under mocks nothing dials them (see mocks.ts).
        "redis-ha:nodes": JSON.stringify([
            { name: "redis-1", host: "192.0.2.7", privateIp: "10.0.10.7" },
            { name: "redis-2", host: "192.0.2.8", privateIp: "10.0.10.8", replicaPriority: 10 },
            { name: "redis-3", host: "192.0.2.9", privateIp: "10.0.10.9" },
        ]),
        "redis-ha:sshPrivateKey": KEY,
        "redis-ha:redis": JSON.stringify({ maxmemory: "1gb" }),
        "redis-ha:sentinel": JSON.stringify({ downAfterMilliseconds: 5000 }),
        ...Object.fromEntries(Object.entries(PASSWORDS).map(([k, v]) => [`redis-ha:${k}`, v])),
    },
    ["redis-ha:sshPrivateKey", ...Object.keys(PASSWORDS).map((k) => `redis-ha:${k}`)],
);

const NODES = ["redis-1", "redis-2", "redis-3"];

describe("program (mocks)", function () {
    let program: typeof import("../../index");

    // Only what this program registers (other test files deploy clusters of their own).
    let recorded: Recorded[] = [];

    before(async () => {
        const from = all.length;
        // Through Pulumi.yaml's `main`, as `pulumi` loads it: its exports are the stack's outputs.
        const main = /^main: (.+)$/m.exec(fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.yaml"), "utf8"))![1];
        program = require(path.join(__dirname, "..", "..", main));
        await outputOf(program.currentMaster); // every resource has been registered by then
        recorded = all.slice(from);
    });

    const named = (n: string) => {
        const r = recorded.find((x) => x.name === n);
        assert.ok(r, `no resource named ${n}; have ${recorded.map((x) => x.name).join(", ")}`);
        return r;
    };

    it("creates per node a ServerPrep, a RedisNode and a SentinelNode, and one agreement", () => {
        const names = recorded.map((r) => `${r.type}::${r.name}`).sort();
        const dynamic = (n: string) => `pulumi-nodejs:dynamic:Resource::${n}`;
        assert.deepStrictEqual(
            names,
            [
                "redis-ha:index:Cluster::redis-ha",
                dynamic("redis-ha-sentinel-agreement"),
                dynamic("redis-ha-master-election"),
                dynamic("redis-ha-membership"),
                dynamic("redis-ha-rolling-restart"),
                ...NODES.flatMap((n) => [
                    dynamic(`${n}-host-key`),
                    dynamic(`${n}-ssh-key`),
                    dynamic(`${n}-facts`),
                    dynamic(`${n}-packages`),
                    dynamic(`${n}-kernel`),
                    dynamic(`${n}-redis`),
                    dynamic(`${n}-sentinel`),
                    `redis-ha:index:ServerPrep::${n}`,
                    `redis-ha:index:RedisNode::${n}`,
                    `redis-ha:index:SentinelNode::${n}`,
                ]),
                dynamic("redis-ha-runtime"),
            ].sort(),
        );
    });

    it("runs the scripts from assets/, each with its removal", () => {
        // A script travels as a secret (hidden in a preview's diff) and packed; text() unwraps both.
        assert.strictEqual(text(named("redis-1-facts").inputs.create), script("host-facts.sh"));
        const redisFiles = { DATA_SURVEY: script("data-survey.sh"), STOP_HOOK: script("hooks/redis-stop.sh") };
        for (const [suffix, create, remove, files] of [
            ["packages", "packages.sh", "packages-remove.sh"],
            ["kernel", "kernel-tuning.sh", "kernel-tuning-remove.sh"],
            ["redis", "redis-node.sh", "redis-node-remove.sh", redisFiles],
            ["sentinel", "sentinel-node.sh", "sentinel-node-remove.sh", { START_HOOK: script("hooks/sentinel-start.sh") }],
        ] as const) {
            const r = named(`redis-2-${suffix}`).inputs;
            // Redis and Sentinel tell a first run (which ignores leftovers of an earlier deployment) from later ones.
            assert.strictEqual(text(r.create), files ? script(create, files, { STEP: "create" }) : script(create));
            if (files) assert.strictEqual(text(r.update), script(create, files, { STEP: "update" }));
            assert.strictEqual(text(r.delete), script(remove));
        }
    });

    it("shows a changed script in a preview as one line, its asset and digest, not its text", () => {
        const r = named("redis-2-redis").inputs;
        assert.ok(isSecret(r.create) && isSecret(r.delete), "a script text would be printed whole, old and new");
        const labels = plain(r.scripts);
        assert.match(labels.create, /^redis-node\.sh sha256:[0-9a-f]{12}$/);
        assert.match(labels.delete, /^redis-node-remove\.sh sha256:[0-9a-f]{12}$/);
        assert.notStrictEqual(script("redis-node.sh").split("\n")[0], script("sentinel-node.sh").split("\n")[0]);
    });

    it("configures Redis by node: own address, priority, no replicaof, shared cluster view", () => {
        const env = named("redis-2-redis").inputs.environment;
        assert.deepStrictEqual(env.REDIS_SETTINGS.split("\n"), [
            "bind 10.0.10.8 127.0.0.1 -::1",
            "port 6379",
            "protected-mode yes",
            "maxmemory 1gb",
            "maxmemory-policy noeviction",
            "appendonly yes",
            "save 3600 1 300 100 60 10000",
            "min-replicas-to-write 1",
            "min-replicas-max-lag 10",
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
            "repl-backlog-size 64mb",
            "replica-announce-ip 10.0.10.8",
            "replica-priority 10",
        ]);
        assert.strictEqual(env.SELF_IP, "10.0.10.8");
        // Which node is master at creation is the master election's business (with no sentinel majority).
        assert.strictEqual(env.INITIAL_MASTER_IP, undefined);
        assert.strictEqual(env.SENTINEL_PEERS, "10.0.10.7:26379 10.0.10.8:26379 10.0.10.9:26379");
        assert.match(env.ACL_RULES, /^sentinel allchannels \+multi \+slaveof \+ping \+exec \+subscribe \+config\|rewrite \+role \+publish \+info \+client\|setname \+client\|kill \+script\|kill$/m);
        assert.match(env.ACL_RULES, /^replication \+psync \+replconf \+ping$/m);
        // Every channel but Sentinel's: `__sentinel__:hello` is how sentinels learn of masters.
        const app = /^app ~\* resetchannels (.*) \+@all -@admin -@dangerous \+info \+role$/m.exec(env.ACL_RULES);
        assert.ok(app, env.ACL_RULES);
        assert.ok(app[1].startsWith("&[^_]* &_ &_[^_]* &__ &__[^s]*"), app[1]);
        assert.ok(app[1].endsWith("&__sentinel__ &__sentinel__[^:]*"), app[1]);
        assert.strictEqual(env.PURGE_DATA, "no");
    });

    it("configures Sentinel with the quorum, timings and a fixed group name", () => {
        const s = named("redis-3-sentinel").inputs;
        assert.deepStrictEqual(s.environment.SENTINEL_SETTINGS.split("\n"), ["quorum 2", "down-after-milliseconds 5000", "failover-timeout 180000", "parallel-syncs 1"]);
        assert.strictEqual(s.environment.MASTER_NAME, "mymaster");
        // pings every tenth of the down-after period: 5000 ms here
        assert.strictEqual(s.environment.PING_PERIOD_MS, "500");
        assert.deepStrictEqual(s.triggers, ["mymaster"]);
        assert.deepStrictEqual(s.environment.SENTINEL_ACL_RULES.split("\n").map((l: string) => l.split(" ")[0]), ["admin", "sentinel", "discovery"]);
        assert.match(s.environment.SENTINEL_ACL_RULES, /^discovery allchannels \+ping .*\+sentinel\|get-master-addr-by-name/m);
        assert.ok(!/^discovery .*(\+@all|\+publish|\+acl|sentinel\|(set|failover|monitor|remove|config|reset))/m.test(s.environment.SENTINEL_ACL_RULES), "discovery can do more than discover");
        assert.strictEqual(s.environment.SENTINEL_DEFAULT_USER, "off");
    });

    it("passes passwords on stdin only, as secrets, never in a script or the environment", () => {
        const expected: Record<string, string> = {
            redis: `admin ${PASSWORDS.adminPassword}\nreplication ${PASSWORDS.replicationPassword}\nsentinel ${PASSWORDS.sentinelAuthPassword}\napp ${PASSWORDS.appPassword}\ndiscovery ${PASSWORDS.sentinelPassword}\n`,
            sentinel: `admin ${PASSWORDS.adminPassword}\nsentinel ${PASSWORDS.sentinelAuthPassword}\ndiscovery ${PASSWORDS.sentinelPassword}\n`,
        };
        const waiters = ["redis-ha-sentinel-agreement", "redis-ha-runtime", "redis-ha-master-election", "redis-ha-membership", "redis-ha-rolling-restart"];
        for (const r of recorded.filter((x) => x.type === "pulumi-nodejs:dynamic:Resource" && !waiters.includes(x.name))) {
            assert.ok(isSecret(r.inputs.connection), `${r.name}: the connection (with the SSH key) is not secret`);
            const kind = r.name.split("-").pop()!;
            if (expected[kind]) {
                assert.ok(isSecret(r.inputs.stdin), `${r.name}: stdin is not secret`);
                assert.strictEqual(plain(r.inputs.stdin), expected[kind]);
            } else {
                assert.strictEqual(r.inputs.stdin, undefined, `${r.name} gets secrets it does not need`);
            }
            const visible = JSON.stringify([text(r.inputs.create), text(r.inputs.update), text(r.inputs.delete), r.inputs.environment, r.inputs.triggers]);
            for (const p of Object.values(PASSWORDS)) assert.ok(!visible.includes(p), `${r.name}: a password is outside stdin`);
        }
        const agreement = named("redis-ha-sentinel-agreement").inputs;
        assert.ok(isSecret(agreement.adminPassword));
        assert.strictEqual(agreement.sentinelPassword, undefined);
        assert.ok(isSecret(named("redis-ha-master-election").inputs.adminPassword));
        const membership = named("redis-ha-membership").inputs;
        assert.ok(isSecret(membership.adminPassword) && isSecret(membership.sshPrivateKey));
        const rolling = named("redis-ha-rolling-restart").inputs;
        assert.ok(isSecret(rolling.adminPassword) && isSecret(rolling.previousAdminPassword) && isSecret(rolling.sshPrivateKey));
    });

    it("re-checks the agreement whenever a node command runs again", () => {
        const a = named("redis-ha-sentinel-agreement").inputs;
        assert.deepStrictEqual(a.revisions, [...NODES.map((n) => `${n}-redis-run`), ...NODES.map((n) => `${n}-sentinel-run`)]);
        assert.deepStrictEqual(a.sentinels.map((s: { host: string }) => s.host), ["10.0.10.7", "10.0.10.8", "10.0.10.9"]);
    });

    it("serializes the dynamic providers without secrets or module state", () => {
        for (const r of recorded.filter((x) => x.type === "pulumi-nodejs:dynamic:Resource")) {
            const code: string = r.inputs.__provider;
            assert.ok(code.length > 0 && code.length < 200_000, `${r.name}: provider code is ${code.length} bytes`);
            for (const p of [...Object.values(PASSWORDS), "PRIVATE KEY"]) assert.ok(!code.includes(p), `${r.name}: a secret was captured in the provider code`);
            assert.ok(!/require\("zod"\)/.test(code), `${r.name}: the provider captured zod`);
        }
    });

    it("exports what clients need: sentinels, master name, the replicas, and an ioredis object", async () => {
        assert.strictEqual(program.masterName, "mymaster");
        assert.deepStrictEqual(program.sentinels, NODES.map((_, i) => ({ host: `10.0.10.${7 + i}`, port: 26379 })));
        assert.deepStrictEqual((await outputOf(program.replicas)).map((r) => r.name), ["redis-2", "redis-3"]);
        const client = await outputOf(program.ioredis);
        assert.deepStrictEqual(client, {
            sentinels: program.sentinels,
            name: "mymaster",
            sentinelUsername: "discovery",
            sentinelPassword: PASSWORDS.sentinelPassword,
            username: "app",
            password: PASSWORDS.appPassword,
            connectTimeout: 200,
            socketTimeout: 1000,
            sentinelCommandTimeout: 200,
        });
        assert.ok(await pulumi.isSecret(program.ioredis), "the ioredis object must be a secret output");
        const nodes = await outputOf(pulumi.output(program.nodes));
        assert.strictEqual(nodes["redis-1"].kernel.transparentHugePages, "never");
        // What runs is what the rolling restart read after its restarts, over the packages step's earlier view.
        assert.deepStrictEqual([nodes["redis-1"].packages, nodes["redis-1"].serverVersion], [{ "redis-server": "5:7.0.15-1~deb12u10" }, "7.0.15"]);
        assert.deepStrictEqual([nodes["redis-2"].packages, nodes["redis-2"].serverVersion], [{ "redis-server": "7.0.15" }, undefined]);
    });
});
