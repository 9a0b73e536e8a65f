// Docker mode under Pulumi mocks: the exact container specs, the provider per host, and what
// each container waits for. (No Docker engine or Docker provider runs on our machines: the lab
// test tests/e2e/docker-native.test.ts starts these command lines natively instead.)
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { type ClusterArgs, RedisHaCluster } from "../../components/cluster";
import { parseStackConfig } from "../../components/config";
import { rollingOrder } from "../../components/container-gate";
import { bytesOf, containerSpec } from "../../components/docker-runtime";
import { KEY, PASSWORDS } from "./fixtures";
import { outputOf, recorded, type Recorded } from "./mocks";

const base = {
    nodes: ["1", "2", "3"].map((i) => ({ name: `d${i}`, host: `192.0.2.${i}`, privateIp: `10.0.20.${i}`, sshUser: "deploy", sshPort: 2222 })),
    sshPrivateKey: KEY,
    runtime: "docker",
    redis: { maxmemory: "2gb" },
    ...PASSWORDS,
};

describe("docker runtime (mocks)", function () {
    let mine: Recorded[] = [];
    const named = (n: string) => mine.find((r) => r.name === n) ?? assert.fail(`no resource ${n}; have ${mine.map((r) => r.name).join(", ")}`);
    /** Each resource's options, as the program gave them (recorded by a transformation). */
    const options = new Map<string, pulumi.CustomResourceOptions>();
    /** The names of the resources a resource depends on explicitly. */
    const dependsOn = async (name: string) => {
        const deps = (await outputOf(pulumi.output(options.get(name)?.dependsOn ?? []) as pulumi.Output<unknown>)) as pulumi.Resource[] | pulumi.Resource;
        const urns = await Promise.all((Array.isArray(deps) ? deps : [deps]).map((d) => outputOf(d.urn)));
        return urns.map((u) => u.split("::").pop()!).sort();
    };

    before(async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("docker", base as ClusterArgs, {
            transformations: [
                (a) => {
                    options.set(a.name, a.opts);
                    return undefined;
                },
            ],
        });
        await outputOf(pulumi.all([cluster.currentMaster, cluster.nodes]));
        mine = recorded.slice(from);
    });

    it("runs one Redis and one Sentinel container per node, with host networking and a restart policy", () => {
        for (const n of ["d1", "d2", "d3"]) {
            const redis = named(`${n}-redis-container`).inputs;
            assert.deepStrictEqual(
                { name: redis.name, image: redis.image, command: redis.command, networkMode: redis.networkMode, restart: redis.restart, memory: redis.memory, mustRun: redis.mustRun },
                {
                    name: "redis-ha-redis",
                    image: "sha256:mock-redis:7.4.2",
                    command: ["redis-server", "/etc/redis/redis.conf", "--supervised", "no", "--daemonize", "no"],
                    networkMode: "host",
                    restart: "unless-stopped",
                    memory: 3072 + 64,
                    mustRun: true,
                },
            );
            const sentinel = named(`${n}-sentinel-container`).inputs;
            assert.deepStrictEqual([sentinel.name, sentinel.command, sentinel.networkMode, sentinel.restart], [
                "redis-ha-sentinel",
                ["redis-sentinel", "/etc/redis/sentinel.conf", "--supervised", "no", "--daemonize", "no"],
                "host",
                "unless-stopped",
            ]);
            for (const c of [redis, sentinel]) {
                assert.deepStrictEqual(c.volumes, ["/etc/redis", "/var/lib/redis", "/var/log/redis"].map((p) => ({ hostPath: p, containerPath: p })));
            }
        }
    });

    it("replaces containers one node at a time, replicas first and the master last, each old one deleted first", async () => {
        // Under mocks no sentinel answers: the master is the initial one, d1, so the order is d2, d3, d1.
        for (const n of ["d1", "d2", "d3"]) {
            for (const service of ["redis", "sentinel"]) {
                assert.strictEqual(options.get(`${n}-${service}-container`)?.deleteBeforeReplace, true, `${n}-${service}-container: a new container cannot start beside the old one`);
            }
        }
        assert.deepStrictEqual(await dependsOn("d2-container-gate"), []);
        assert.deepStrictEqual(await dependsOn("d3-container-gate"), ["d2-redis-container"]);
        assert.deepStrictEqual(await dependsOn("d1-container-gate"), ["d3-redis-container"]);
        for (const n of ["d1", "d2", "d3"]) assert.deepStrictEqual(await dependsOn(`${n}-redis-container`), [`${n}-container-gate`, `${n}-redis`]);
        assert.deepStrictEqual(await dependsOn("d2-sentinel-container"), ["d2-sentinel"]);
        assert.deepStrictEqual(await dependsOn("d3-sentinel-container"), ["d2-sentinel-container", "d3-sentinel"]);
        assert.deepStrictEqual(await dependsOn("d1-sentinel-container"), ["d1-sentinel", "d3-sentinel-container"]);
        // A gate waits (and hands the master role over) only when the image changes.
        const gate = named("d1-container-gate").inputs;
        assert.deepStrictEqual([gate.node, gate.image], ["d1", "sha256:mock-redis:7.4.2"]);
    });

    it("orders the replicas in config order and the master last, whichever it is", () => {
        assert.deepStrictEqual(rollingOrder(["a", "b", "c"], "b"), ["a", "c", "b"]);
        assert.deepStrictEqual(rollingOrder(["a", "b", "c"], "c"), ["a", "b", "c"]);
        assert.deepStrictEqual(rollingOrder(["a", "b"], undefined), ["a", "b"]);
    });

    it("talks to each host's Docker over SSH, and pulls the pinned image there", () => {
        const provider = named("d2-docker");
        assert.strictEqual(provider.type, "pulumi:providers:docker");
        assert.strictEqual(provider.inputs.host, "ssh://deploy@192.0.2.2:2222");
        const image = named("d2-redis-image");
        assert.deepStrictEqual([image.inputs.name, image.inputs.keepLocally], ["redis:7.4.2", true]);
        assert.match(image.provider ?? "", /::d2-docker::/);
        assert.match(named("d2-redis-container").provider ?? "", /::d2-docker::/);
    });

    it("writes the same configuration with the same scripts, told to use containers", () => {
        const env = named("d1-redis").inputs.environment;
        assert.strictEqual(env.RUNTIME, "docker");
        assert.match(env.REDIS_SETTINGS, /^maxmemory 2gb$/m);
        assert.strictEqual(named("d1-sentinel").inputs.environment.RUNTIME, "docker");
        assert.strictEqual(named("d1-packages").inputs.environment.PACKAGES, "redis-tools");
        assert.ok(named("d1-docker-host"));
    });

    it("keeps the image pull out when the image is preloaded, and installs the engine when asked", async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("docker-preloaded", { ...base, docker: { preloaded: true, installEngine: true, image: "registry.local/redis:7.2.5" } } as ClusterArgs);
        await outputOf(cluster.currentMaster);
        const again = recorded.slice(from);
        assert.ok(!again.some((r) => r.type === "docker:index/remoteImage:RemoteImage"));
        assert.strictEqual(again.find((r) => r.name === "d1-redis-container")!.inputs.image, "registry.local/redis:7.2.5");
        assert.strictEqual(again.find((r) => r.name === "d1-packages")!.inputs.environment.PACKAGES, "redis-tools docker.io");
    });

    it("sizes the container's memory from maxmemory with headroom", () => {
        const cfg = parseStackConfig({ ...base, redis: { maxmemory: "512mb" }, docker: { memoryHeadroomPercent: 100 } });
        assert.strictEqual(containerSpec(cfg, "redis").memory, 1024 + 64);
        assert.strictEqual(bytesOf("1gb"), 1024 ** 3);
        assert.strictEqual(bytesOf("1000"), 1000);
    });

    it("refuses an unpinned image at preview", () => {
        assert.throws(() => parseStackConfig({ ...base, docker: { image: "redis:latest" } }), /redis-ha:docker\.image must pin a version/);
        assert.throws(() => parseStackConfig({ ...base, docker: { image: "redis" } }), /redis-ha:docker\.image must name a tag or digest/);
    });
});
