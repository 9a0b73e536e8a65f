// RedisHaCluster as a library component, under Pulumi mocks: its args are checked with the
// config schema's messages (secrets that are Outputs once known), its children sit under it,
// and no stand-in for a secret not known yet ever reaches a resource.
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { type ClusterArgs, RedisHaCluster } from "../../components/cluster";
import { ConfigError } from "../../components/config";
import { KEY, newSshKey, PASSWORDS } from "./fixtures";
import { isSecret, outputOf, plain, recorded } from "./mocks";
import { issueCa, issueCert } from "../../components/tls-certs";

const nodes = ["1", "2", "3"].map((i) => ({ name: `lib-${i}`, host: `192.0.2.${i}`, privateIp: `10.0.30.${i}` }));
const args = (extra: Partial<ClusterArgs> = {}): ClusterArgs => ({ nodes, sshPrivateKey: KEY, redis: { maxmemory: "1gb" }, ...PASSWORDS, ...extra });

describe("RedisHaCluster (mocks)", () => {
    it("refuses bad args at once, naming each key as the config does", () => {
        assert.throws(
            () => new RedisHaCluster("bad", args({ redis: { maxmemory: "lots" }, sentinel: { port: 6379 } })),
            (e: ConfigError) => {
                assert.ok(e instanceof ConfigError);
                assert.ok(e.problems.some((p) => /^redis-ha:redis\.maxmemory must be a size/.test(p)), e.message);
                assert.ok(e.problems.some((p) => /^redis-ha:sentinel\.port /.test(p)), e.message);
                return true;
            },
        );
    });

    it("checks secrets that are Outputs once they are known", async () => {
        const cluster = new RedisHaCluster("late", args({ appPassword: pulumi.output("short") }));
        // The Output's own promise (internal to @pulumi/pulumi): apply() never runs on a failure.
        const settled = (cluster.ioredis as unknown as { promise(): Promise<unknown> }).promise();
        await assert.rejects(settled, /redis-ha:appPassword is too short/);
    });

    it("puts every resource under the cluster, and never a stand-in for a secret", async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("lib", args({ adminPassword: pulumi.secret(PASSWORDS.adminPassword) }));
        const client = await outputOf(cluster.ioredis);
        await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes["lib-1"].kernel]));
        assert.strictEqual(client.password, PASSWORDS.appPassword);
        const mine = recorded.slice(from);
        assert.ok(mine.some((r) => r.name === "lib-sentinel-agreement") && mine.some((r) => r.name === "lib-1-host-key"));
        const all = JSON.stringify(mine.map((r) => plain(r.inputs)));
        assert.ok(!all.includes("stand-in"), "a stand-in for a secret reached a resource");
        assert.ok(all.includes(PASSWORDS.adminPassword), "the admin password from an Output did not reach the resources");
    });

    it("with metrics.enabled, an exporter per node: its package in the node's one apt run (unit held), the `metrics` user on Redis and Sentinel, the targets in the outputs", async () => {
        const from = recorded.length;
        const mx = nodes.map((n) => ({ ...n, name: `mx${n.name.slice(3)}` }));
        const cluster = new RedisHaCluster("mx", args({ nodes: mx, metrics: { enabled: true }, metricsPassword: "unit-metrics-0123456789" }));
        await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes["mx-1"].kernel]));
        const mine = recorded.slice(from).map((r) => ({ name: r.name, inputs: plain(r.inputs) }));
        const inputs = (name: string) => mine.find((r) => r.name === name)!.inputs;
        assert.strictEqual(inputs("mx-1-packages").environment.ALSO_SETS, "metrics=prometheus-redis-exporter");
        assert.match(inputs("mx-1-packages").environment.HOLD_UNITS, / prometheus-redis-exporter$/);
        assert.match(inputs("mx-1-redis").environment.ACL_RULES, /^metrics resetchannels -@all \+ping \+info /m);
        assert.doesNotMatch(inputs("mx-1-redis").environment.ACL_RULES, /^metrics .*(~|\+@|config)/m);
        assert.match(inputs("mx-1-sentinel").environment.SENTINEL_ACL_RULES, /^metrics resetchannels -@all .*\+sentinel\|masters/m);
        for (const step of ["mx-1-redis", "mx-1-sentinel", "mx-1-metrics"]) assert.match(plain(inputs(step).stdin), /^metrics unit-metrics-0123456789$/m, step);
        assert.deepStrictEqual(inputs("mx-1-metrics").environment, { SELF_IP: "10.0.30.1", METRICS_PORT: "9121", REDIS_PORT: "6379", SENTINEL_PORT: "26379" });
        assert.deepStrictEqual(cluster.metricsTargets?.[0], { node: "mx-1", redis: "http://10.0.30.1:9121/metrics", sentinel: "http://10.0.30.1:9121/scrape?target=redis://127.0.0.1:26379" });
        // Without metrics: no exporter, no user, no targets.
        assert.ok(!recorded.some((r) => r.name === "lib-1-metrics") && !/^metrics /m.test(plain(recorded.find((r) => r.name === "lib-1-redis")!.inputs).environment.ACL_RULES));
    });

    it("with an apt packageSource, adds the repository on each node (the lab test shows it comes before the packages), and nothing without", async () => {
        const from = recorded.length;
        const signingKey = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGunit\n-----END PGP PUBLIC KEY BLOCK-----\n";
        const src = { type: "apt" as const, url: "https://packages.redis.io/deb", suite: "bookworm", signingKey };
        const cluster = new RedisHaCluster("ap", args({ nodes: nodes.map((n) => ({ ...n, name: `ap${n.name.slice(3)}` })), redis: { maxmemory: "1gb", packageSource: src } }));
        await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes["ap-1"].kernel]));
        const mine = recorded.slice(from);
        const step = mine.find((r) => r.name === "ap-1-apt-source")!;
        assert.deepStrictEqual(plain(step.inputs).environment, { REPO_URL: src.url, REPO_SUITE: "bookworm", REPO_COMPONENT: "main", REPO_KEY: signingKey, PACKAGES: "redis-server redis-sentinel redis-tools" });
        assert.ok(!recorded.some((r) => r.name === "lib-1-apt-source"), "a stack without packageSource got a repository step");
    });

    it("with redis.server valkey, installs Valkey's packages, holds its units, and tells every server script (SERVER=valkey)", async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("vk", args({ nodes: nodes.map((n) => ({ ...n, name: `vk${n.name.slice(3)}` })), redis: { maxmemory: "1gb", server: "valkey" } }));
        await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes["vk-1"].kernel]));
        const mine = recorded.slice(from).map((r) => ({ name: r.name, inputs: plain(r.inputs) }));
        const packages = mine.find((r) => r.name === "vk-1-packages")!.inputs.environment;
        assert.strictEqual(packages.PACKAGES, "valkey-server valkey-sentinel valkey-tools");
        assert.strictEqual(packages.HOLD_UNITS, "valkey-server valkey-sentinel");
        for (const step of ["vk-1-redis", "vk-1-sentinel"]) assert.strictEqual(mine.find((r) => r.name === step)!.inputs.environment.SERVER, "valkey", step);
        assert.strictEqual(mine.find((r) => r.name === "vk-rolling-restart")!.inputs.wanted.PACKAGES, "valkey-server valkey-sentinel valkey-tools");
        assert.strictEqual(mine.find((r) => r.name === "vk-rolling-restart")!.inputs.wanted.SERVER, "valkey");
        assert.strictEqual(mine.find((r) => r.name === "vk-membership")!.inputs.server, "valkey");
        assert.strictEqual(mine.find((r) => r.name === "vk-runtime")!.inputs.server, "valkey");
        // A Redis cluster's scripts get no SERVER: stacks from before the choice see no change.
        const redisSteps = recorded.filter((r) => r.name.startsWith("lib-1-") && plain(r.inputs).environment);
        assert.ok(redisSteps.length > 0 && redisSteps.every((r) => !("SERVER" in plain(r.inputs).environment)));
    });

    it("starts a node's first steps once its host key is known; only while the SSH key rotates, after the key step", async () => {
        const deps = new Map<string, pulumi.ResourceOptions["dependsOn"]>();
        const recordDeps: pulumi.ComponentResourceOptions = { transformations: [(a) => (deps.set(a.name, a.opts.dependsOn), undefined)] };
        const dependsOn = async (name: string) => {
            const d = (await outputOf(pulumi.output(deps.get(name) ?? []) as pulumi.Output<unknown>)) as pulumi.Resource[] | pulumi.Resource;
            const urns = await Promise.all((Array.isArray(d) ? d : [d]).map((r) => outputOf(r.urn)));
            return urns.map((u) => u.split("::").pop()!).sort();
        };
        for (const [prefix, extra] of [["sk", {}], ["rk", { previousSshPrivateKey: newSshKey() }]] as const) {
            const cluster = new RedisHaCluster(prefix, args({ nodes: nodes.map((n) => ({ ...n, name: `${prefix}${n.name.slice(3)}` })), ...extra }), recordDeps);
            await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes[`${prefix}-1`].kernel]));
        }
        assert.deepStrictEqual(await dependsOn("sk-1-ssh-key"), ["sk-1-host-key"]);
        for (const step of ["facts", "packages", "kernel"]) {
            assert.deepStrictEqual(await dependsOn(`sk-1-${step}`), ["sk-1-host-key"], step);
            assert.deepStrictEqual(await dependsOn(`rk-1-${step}`), ["rk-1-ssh-key"], step);
        }
    });
});

describe("RedisHaCluster with TLS (mocks)", () => {
    const tlsNodes = (prefix: string) => nodes.map((n) => ({ ...n, name: `${prefix}${n.name.slice(3)}` }));
    const b64 = (s: string) => Buffer.from(s).toString("base64");

    it("issues a certificate per node naming its address and loopback, sends each node its own key on stdin only, and hands clients the CA", async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("tl", args({ nodes: tlsNodes("tl"), tls: { enabled: true } }));
        const client = await outputOf(cluster.ioredis);
        await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes["tl-1"].kernel]));
        const mine = recorded.slice(from);
        const inputs = (name: string) => plain(mine.find((r) => r.name === name)!.inputs);
        assert.deepStrictEqual(inputs("tl-tls").nodes[0], { name: "tl-1", ips: ["10.0.30.1", "127.0.0.1"] });
        assert.deepStrictEqual(inputs("tl-tls").clients, []);
        assert.deepStrictEqual([client.tls, client.sentinelTLS, client.enableTLSForSentinelMode], [{ ca: "ca-cert" }, { ca: "ca-cert" }, true]);
        assert.strictEqual(await outputOf(cluster.tlsCaCertificate!), "ca-cert");
        const redis = mine.find((r) => r.name === "tl-1-redis")!;
        assert.match(plain(redis.inputs.stdin), new RegExp(`^tls-key ${b64("key-of-tl-1")}$`, "m"));
        assert.doesNotMatch(plain(redis.inputs.stdin), /key-of-tl-2|tls-key .*\n(.|\n)*tls-key/);
        assert.strictEqual(inputs("tl-1-redis").environment.TLS_DIR, "/etc/ssl/redis-ha");
        assert.match(inputs("tl-1-redis").environment.REDIS_SETTINGS, /^port 0\ntls-port 6379\n/m);
        assert.match(inputs("tl-1-sentinel").environment.SENTINEL_LISTEN, /^port 0\ntls-port 26379\n/);
        assert.strictEqual(inputs("tl-1-sentinel").environment.TLS_CERT_UNTIL, "2027-12-05T00:00:00.000Z");
        assert.strictEqual(inputs("tl-runtime").tls, true);
        // The deployer's own connections trust the CA; keys reach no resource in clear.
        assert.deepStrictEqual(plain(inputs("tl-sentinel-agreement").tls), { ca: "ca-cert" });
        for (const r of mine) {
            if (r.name === "tl-tls") continue;
            const clear = JSON.stringify(r.inputs, (_k, v) => (isSecret(v) ? "[secret]" : v));
            assert.ok(!/key-of-|ca-key/.test(clear), `${r.name} has a key in clear`);
        }
    });

    it("with tls.authClients, issues app and deployer certificates: the outputs carry the app's, the deployer's own connections present theirs", async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("ta", args({ nodes: tlsNodes("ta"), tls: { enabled: true, authClients: true } }));
        const client = await outputOf(cluster.ioredis);
        await outputOf(cluster.currentMaster);
        const mine = recorded.slice(from);
        assert.deepStrictEqual(client.tls, { ca: "ca-cert", cert: "cert-of-app", key: "key-of-app" });
        assert.deepStrictEqual(plain(mine.find((r) => r.name === "ta-sentinel-agreement")!.inputs.tls), { ca: "ca-cert", cert: "cert-of-deployer", key: "key-of-deployer" });
    });

    it("with certificates brought by the user, makes no CA and hands out theirs", async () => {
        const ca = await issueCa("user CA", 30);
        const own = Object.fromEntries(await Promise.all(tlsNodes("tu").map(async (n) => [n.name, await issueCert(ca, { name: n.name, ips: [n.privateIp] }, 20)] as const)));
        const given = JSON.stringify({ ca: ca.cert, nodes: Object.fromEntries(Object.entries(own).map(([k, v]) => [k, { cert: v.cert, key: v.key }])) });
        const from = recorded.length;
        const cluster = new RedisHaCluster("tu", args({ nodes: tlsNodes("tu"), tls: { enabled: true }, tlsCertificates: pulumi.secret(given) }));
        const client = await outputOf(cluster.ioredis);
        await outputOf(cluster.currentMaster);
        const mine = recorded.slice(from);
        assert.ok(!mine.some((r) => r.name === "tu-tls"), "a CA was made");
        assert.deepStrictEqual(client.tls, { ca: ca.cert });
        assert.match(plain(mine.find((r) => r.name === "tu-1-redis")!.inputs.stdin), new RegExp(`^tls-key ${b64(own["tu-1"].key)}$`, "m"));
        assert.strictEqual(plain(mine.find((r) => r.name === "tu-1-sentinel")!.inputs.environment).TLS_CERT_UNTIL, own["tu-1"].notAfter);
    });
});
