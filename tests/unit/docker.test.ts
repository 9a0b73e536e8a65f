// Docker mode under Pulumi mocks: the exact container specs, the provider per host, and what
// each container waits for. (No Docker engine or Docker provider runs on our machines: the lab
// test tests/e2e/docker-native.test.ts starts these command lines natively instead.)
import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { type ClusterArgs, RedisHaCluster } from "../../components/cluster";
import { parseStackConfig } from "../../components/config";
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

    before(async () => {
        const from = recorded.length;
        const cluster = new RedisHaCluster("docker", base as ClusterArgs);
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
