// Docker mode, proven without Docker: no Docker engine runs on our machines and the Docker
// provider cannot be built here. So this runs what docker mode does to a host, for real, on the
// lab hosts: the same scripts with RUNTIME=docker write the configuration (and, as with
// containers that do not exist yet, start nothing), then the exact command lines the containers
// would run (containerSpec) are started natively, as the redis user, on the same paths the
// containers bind-mount. They must form a working Sentinel group that fails over, and Sentinel
// must keep owning its file across restarts. What only a host with Docker can show (the image's
// entrypoint, the restart policy, the memory limit): see README "Docker mode".
import * as assert from "assert";
import { parseStackConfig, type ResolvedConfig } from "../../components/config";
import { discoverMaster } from "../../components/discovery";
import { containerSpec } from "../../components/docker-runtime";
import { redisNodeEnv, sentinelNodeEnv } from "../../components/render";
import { script } from "../../components/assets";
import { elect } from "../../components/master-election";
import { labAgreement, labHosts, labKey, newPasswords, onHost, runAsset, wipeRedisData } from "./lab";

/** Test stand-in for the docker CLI: container redis-ha-<service> is unit redis-ha-native-<service>. */
const DOCKER_STAND_IN = `#!/bin/sh
[ "$1" = inspect ] && [ "$2" = -f ] && set -- inspect "$4"
unit="redis-ha-native-\${2#redis-ha-}"
case "$1" in
inspect) systemctl is-active -q "$unit" && echo true || { systemctl status "$unit" >/dev/null 2>&1 || exit 1; echo false; } ;;
start | restart) systemctl "$1" "$unit" ;;
*) exit 2 ;;
esac
`;

describe("lab: docker mode's files and command lines, run natively", function () {
    const hosts = labHosts();
    const passwords = newPasswords();
    let cfg: ResolvedConfig;
    /** What redis-node.sh printed at its first run on each node, for the master election. */
    const firstRuns = new Map<string, string>();
    // As RedisNode builds the scripts: the step, and for Redis the data survey.
    const redisScript = (step: string) => ({ files: { DATA_SURVEY: script("data-survey.sh") }, variables: { STEP: step } });
    const sentinelScript = (step: string) => ({ variables: { STEP: step } });
    const unit = (service: string) => `redis-ha-native-${service}`;
    const secretsFor = (script: "redis" | "sentinel") =>
        (script === "redis"
            ? [["admin", passwords.adminPassword], ["replication", passwords.replicationPassword], ["sentinel", passwords.sentinelAuthPassword], ["app", passwords.appPassword], ["discovery", passwords.sentinelPassword]]
            : [["admin", passwords.adminPassword], ["sentinel", passwords.sentinelAuthPassword], ["discovery", passwords.sentinelPassword]]
        )
            .map(([k, v]) => `${k} ${v}\n`)
            .join("");
    /** Starts a container's command line as a transient unit, as the container would run it. */
    const startNative = (host: string, service: "redis" | "sentinel") => {
        const command = containerSpec(cfg, service).command.join(" ");
        onHost(host, `systemd-run --quiet --unit=${unit(service)} --uid=redis --gid=redis -p Restart=always -- ${command}`);
    };
    const agreement = () => labAgreement(hosts, passwords.adminPassword);

    before(() => {
        cfg = parseStackConfig({
            nodes: hosts.map((h) => ({ name: h.name, host: h.ip })),
            sshPrivateKey: labKey(),
            runtime: "docker",
            redis: { maxmemory: "64mb" },
            sentinel: { downAfterMilliseconds: 1000, failoverTimeout: 10000 },
            ...passwords,
        });
        wipeRedisData(hosts.map((h) => h.ip));
        // The binaries come from Debian's packages here (in a container, from the image); their
        // own units must not run.
        for (const h of hosts) {
            onHost(h.name, "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-sentinel redis-tools >/dev/null && systemctl disable -q --now redis-server redis-sentinel && systemctl mask -q redis-server redis-sentinel");
        }
    });

    after(async () => {
        for (const h of hosts) {
            onHost(h.name, `systemctl stop ${unit("redis")} ${unit("sentinel")} 2>/dev/null; systemctl reset-failed 2>/dev/null; systemctl unmask -q redis-server redis-sentinel; true`);
            await runAsset(h.name, "sentinel-node-remove.sh", { ...sentinelNodeEnv(cfg, cfg.nodes.find((n) => n.name === h.name)!), RUNTIME: "docker" });
            await runAsset(h.name, "redis-node-remove.sh", { ...redisNodeEnv(cfg, cfg.nodes.find((n) => n.name === h.name)!), RUNTIME: "docker" });
        }
    });

    it("writes the configuration with RUNTIME=docker and starts nothing (the containers do not exist yet)", async () => {
        for (const node of cfg.nodes) {
            const stdout = await runAsset(node.name, "redis-node.sh", { ...redisNodeEnv(cfg, node), RUNTIME: "docker" }, secretsFor("redis"), redisScript("create"));
            firstRuns.set(node.name, stdout);
            const report = JSON.parse(stdout);
            assert.deepStrictEqual([report.initialized, report.restarted, report.survey.hasData], [true, false, false]);
            assert.strictEqual(onHost(node.name, "stat -c '%a %U' /etc/redis/redis.conf /etc/redis/users.acl").trim(), "640 redis\n640 redis");
            assert.strictEqual(onHost(node.name, "pgrep -c -x redis-server || true").trim(), "0");
        }
    });

    it("forms a replicated group from the exact redis-server command lines", async () => {
        for (const h of hosts) startNative(h.name, "redis");
        // No sentinel runs and no node holds data: the election makes the initial master the master.
        const chosen = await elect(
            {
                masterName: "mymaster",
                sentinels: hosts.map((h) => ({ host: h.ip, port: 26379 })),
                nodes: cfg.nodes.map((n) => ({ name: n.name, host: n.privateIp, port: 6379, runId: "first", stdout: firstRuns.get(n.name)! })),
                initialMaster: cfg.initialMaster,
                adminPassword: passwords.adminPassword,
                providerVersion: "test",
            },
            {},
        );
        assert.deepStrictEqual([chosen.master, chosen.joined], [hosts[0].name, [hosts[1].name, hosts[2].name]]);
        for (const node of cfg.nodes) {
            const report = JSON.parse(await runAsset(node.name, "sentinel-node.sh", { ...sentinelNodeEnv(cfg, node), RUNTIME: "docker" }, secretsFor("sentinel"), sentinelScript("create")));
            assert.deepStrictEqual([report.initialized, report.restarted], [true, false]);
        }
        for (const h of hosts) startNative(h.name, "sentinel");
        const found = await agreement();
        assert.strictEqual(found.master.name, hosts[0].name);
        assert.deepStrictEqual(found.replicas, [hosts[1].name, hosts[2].name]);
        const args = onHost(hosts[0].name, "ps -o user=,args= -C redis-server -C redis-sentinel");
        assert.match(args, /^redis +\S*redis-server [^\n]*:6379/m);
        assert.match(args, /^redis +\S*redis-sentinel [^\n]*:26379 \[sentinel\]/m);
    });

    it("lets Sentinel keep owning sentinel.conf across a restart of its process", async () => {
        const before = onHost(hosts[1].name, "grep -c '^sentinel known-' /etc/redis/sentinel.conf").trim();
        assert.ok(Number(before) >= 4, `Sentinel did not record what it learnt (${before} known-* lines)`);
        onHost(hosts[1].name, `systemctl restart ${unit("sentinel")}`);
        await agreement();
        assert.strictEqual(onHost(hosts[1].name, "grep -c '^sentinel known-' /etc/redis/sentinel.conf").trim(), before);
    });

    it("fails over when the master's process stops, and the scripts then apply settings at runtime", async () => {
        onHost(hosts[0].name, `systemctl stop ${unit("redis")}`);
        const sentinels = hosts.map((h) => ({ host: h.ip, port: 26379 }));
        const deadline = Date.now() + 60_000;
        let master = await discoverMaster(sentinels, "mymaster", passwords.sentinelPassword);
        while (!master || master.host === hosts[0].ip) {
            assert.ok(Date.now() < deadline, "no failover within 60 s");
            await new Promise((r) => setTimeout(r, 250));
            master = await discoverMaster(sentinels, "mymaster", passwords.sentinelPassword);
        }
        // A later run (a changed setting) on the new master, with RUNTIME=docker. The scripts ask
        // `docker inspect/start` whether the container runs; no Docker here, so a stand-in for the
        // docker CLI answers for the native unit that plays the container.
        const node = cfg.nodes.find((n) => n.privateIp === master!.host)!;
        onHost(node.name, "cat > /usr/local/bin/docker && chmod 755 /usr/local/bin/docker", DOCKER_STAND_IN);
        const changed = { ...cfg, redis: { ...cfg.redis, maxmemory: "80mb" } };
        const report = JSON.parse(await runAsset(node.name, "redis-node.sh", { ...redisNodeEnv(changed, node), RUNTIME: "docker" }, secretsFor("redis"), redisScript("update")));
        assert.deepStrictEqual([report.initialized, report.restarted, report.role], [false, false, "master"]);
        assert.match(onHost(node.name, "grep '^maxmemory ' /etc/redis/redis.conf"), /^maxmemory 80mb$/m);
        onHost(node.name, "rm -f /usr/local/bin/docker");
    });
});
