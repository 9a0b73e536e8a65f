// The cluster for real on three lab hosts: pulumi preview and up, one master, two replicas and
// three agreeing sentinels; clients through the sentinels; least privilege and secrets; a
// re-run that changes nothing; failovers (service stop, host power-off) that a re-run keeps;
// a setting changed at runtime; and destroy. Prints the figures it measured.
import * as assert from "assert";
import * as fs from "fs";
import Redis from "ioredis";
import { majority } from "../../components/config";
import { discoverMaster } from "../../components/discovery";
import { awaitAgreement } from "../../components/sentinel-agreement";
import { askRedis, waitFor, backendFilesContaining, exportState, freshStack, labConfig, labHosts, lab, newPasswords, onHost, timed } from "./lab";

describe("lab cluster: Redis and Sentinel on three hosts", function () {
    const hosts = labHosts();
    const passwords = newPasswords();
    const figures: string[] = [];
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let output = ""; // everything pulumi printed, to check that no secret shows
    const onOutput = (s: string) => (output += s);
    const byIp = (ip: string) => hosts.find((h) => h.ip === ip)!;

    const ask = <T>(ip: string, port: number, auth: { username?: string; password?: string }, fn: (c: Redis) => Promise<T>) =>
        askRedis({ host: ip, port, ...auth }, fn);
    const admin = { username: "admin", password: passwords.adminPassword };
    const role = (ip: string) => ask(ip, 6379, admin, async (c) => (await c.call("ROLE")) as unknown[]);
    /** The node's run id (it changes when Redis restarts); asked up to 3 times, the machine is busy. */
    const runId = async (ip: string) => {
        for (let i = 0; i < 3; i++) {
            const id = await ask(ip, 6379, admin, async (c) => /run_id:(\w+)/.exec(await c.info("server"))![1]);
            if (id) return id;
            await new Promise((r) => setTimeout(r, 300));
        }
        return undefined;
    };
    /** The address of the master a majority of sentinels name (as the program asks), or undefined. */
    const sentinelMaster = async () =>
        (await discoverMaster(hosts.map((h) => ({ host: h.ip, port: 26379 })), "mymaster", passwords.sentinelPassword, { minVotes: majority(hosts.length) }))?.host;
    /** Records every process list on the hosts until the returned function is called, which returns the passwords seen. */
    const sampleProcessLists = () => {
        for (const h of hosts) {
            onHost(h.name, "setsid bash -c 'while :; do ps -eo args; sleep 0.05; done > /root/ps-samples' >/dev/null 2>&1 < /dev/null & echo $! > /root/ps-sampler.pid");
        }
        return () =>
            hosts.flatMap((h) => {
                // The sampler stops first, and the passwords reach grep on stdin: neither the
                // check's own command line nor a sample taken meanwhile can hold one.
                const seen = onHost(h.name, "kill $(cat /root/ps-sampler.pid); sleep 0.2; grep -oF -f - /root/ps-samples | sort -u || true; rm -f /root/ps-samples /root/ps-sampler.pid", Object.values(passwords).join("\n") + "\n");
                return Object.entries(passwords).filter(([, p]) => seen.includes(p)).map(([k]) => `${k} on ${h.name}`);
            });
    };
    const onlySame = (summary: { resourceChanges?: Record<string, number> }) =>
        Object.entries(summary.resourceChanges ?? {}).filter(([op]) => op !== "same");

    before(async () => {
        // down-after 2 s: with 1 s, a busy 2-core machine now and then stalls a node long enough
        // for a second, spurious failover, which the "no failover" checks would mistake for ours.
        stack = await freshStack("lab-cluster", {
            ...labConfig(hosts, passwords),
            "redis-ha:sentinel": { value: JSON.stringify({ downAfterMilliseconds: 2000, failoverTimeout: 10000, agreementTimeoutSeconds: 120 }) },
        });
    });

    after(() => console.log(`    figures:\n${figures.map((f) => `      ${f}`).join("\n")}`));

    it("previews the whole cluster without touching a server", async () => {
        const [preview, secs] = await timed(() => stack.preview({ onOutput }));
        figures.push(`pulumi preview (fresh): ${secs.toFixed(1)} s`);
        assert.strictEqual(preview.changeSummary.create, 1 + 1 + 1 + hosts.length * 10 + 4); // stack, cluster, settings guard, per host, election, membership, rolling restart, agreement
        for (const h of hosts) assert.match(onHost(h.name, "test -e /var/lib/redis-ha && echo present || echo absent"), /absent/);
    });

    it("creates one master, two linked replicas and three sentinels that agree", async () => {
        const leaks = sampleProcessLists(); // no password may ever show in a process list
        const [up, secs] = await timed(() => stack.up({ onOutput }));
        figures.push(`pulumi up (fresh, 3 nodes): ${secs.toFixed(1)} s`);
        assert.strictEqual(up.summary.result, "succeeded");
        assert.deepStrictEqual(up.outputs.currentMaster.value, { name: hosts[0].name, host: hosts[0].ip, port: 6379 });
        assert.deepStrictEqual(up.outputs.replicas.value.map((r: { name: string }) => r.name), [hosts[1].name, hosts[2].name]);
        assert.strictEqual((await role(hosts[0].ip))?.[0], "master");
        for (const h of hosts.slice(1)) {
            const r = await role(h.ip);
            assert.deepStrictEqual([r?.[0], r?.[1], r?.[3]], ["slave", hosts[0].ip, "connected"]);
        }
        assert.strictEqual(await sentinelMaster(), hosts[0].ip);
        for (const h of hosts) {
            const k = up.outputs.nodes.value[h.name].kernel;
            assert.deepStrictEqual([k.transparentHugePages, k.overcommitMemory, k.somaxconn], ["never", "1", "1024"]);
        }
        assert.deepStrictEqual(leaks(), [], "a password showed in a process list");
    });

    it("serves an ioredis client configured from the stack output, through the sentinels", async () => {
        const outputs = await stack.outputs();
        const redis = new Redis({ ...outputs.ioredis.value, lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
            await redis.connect();
            await redis.set("e2e:greeting", "hello");
            assert.strictEqual(await redis.get("e2e:greeting"), "hello");
        } finally {
            redis.disconnect();
        }
    });

    it("gives each user least privilege, disables the default user, stores no clear-text password in the ACL", async () => {
        const m = hosts[0].ip;
        assert.strictEqual(await ask(m, 6379, {}, (c) => c.ping()), undefined, "the default user answered without a password");
        const app = { username: "app", password: passwords.appPassword };
        assert.strictEqual(await ask(m, 6379, app, (c) => c.ping()), "PONG");
        const denied = await ask(m, 6379, app, (c) => c.config("SET", "maxmemory", "1mb").then(() => "allowed", (e: Error) => e.message));
        assert.match(String(denied), /NOPERM/);
        const replication = { username: "replication", password: passwords.replicationPassword };
        assert.match(String(await ask(m, 6379, replication, (c) => c.get("x").then(() => "allowed", (e: Error) => e.message))), /NOPERM/);
        for (const h of hosts) {
            const acl = onHost(h.name, "cat /etc/redis/users.acl; stat -c '%a %U' /etc/redis/users.acl /etc/redis/redis.conf /etc/redis/sentinel.conf");
            for (const p of Object.values(passwords)) assert.ok(!acl.includes(p), `users.acl on ${h.name} holds a password in clear`);
            assert.match(acl, /^user default off/m);
            assert.match(acl, /^640 redis\n640 redis\n640 redis$/m);
        }
        // The hooks' user: a password that only root on its own host reads, no keys, no failover.
        const hooksPassword = (name: string) => onHost(name, "cat /etc/redis-ha/hooks.secret").trim();
        for (const h of hosts) {
            assert.strictEqual(onHost(h.name, "stat -c '%a %U' /etc/redis-ha /etc/redis-ha/hooks.secret").trim(), "700 root\n600 root");
            const hooks = { username: "hooks", password: hooksPassword(h.name) };
            assert.match(String(await ask(h.ip, 6379, hooks, (c) => c.get("x").then(() => "allowed", (e: Error) => e.message))), /NOPERM/);
            assert.match(String(await ask(h.ip, 26379, hooks, (c) => c.call("SENTINEL", "FAILOVER", "mymaster").then(() => "allowed", (e: Error) => e.message))), /NOPERM/);
        }
        const another = { username: "hooks", password: hooksPassword(hosts[1].name) };
        assert.strictEqual(await ask(m, 6379, another, (c) => c.ping()), undefined, "one host's hooks password opened another host's Redis");
    });

    it("has every sentinel ping every 300 ms (down-after 2 s here), read INFO every second and say hello every 0.5 s, also after a restart", async () => {
        const periods = (ip: string) =>
            ask(ip, 26379, admin, async (c) => {
                const pairs = ((await c.call("SENTINEL", "DEBUG")) as unknown[]).map((p) => String(p).toUpperCase());
                return ["PING-PERIOD", "INFO-PERIOD", "PUBLISH-PERIOD"].map((k) => pairs[pairs.indexOf(k) + 1]).join(" ");
            });
        for (const h of hosts) assert.strictEqual(await periods(h.ip), "300 1000 500", `sentinel on ${h.name}: ping, INFO and hello periods`);
        onHost(hosts[1].name, "systemctl restart redis-sentinel");
        await waitFor("the restarted sentinel's periods", async () => (await periods(hosts[1].ip)) === "300 1000 500", 30);
    });

    it("keeps secrets out of the state, the output and world-readable files on the hosts", async () => {
        for (const [key, p] of Object.entries(passwords)) {
            assert.deepStrictEqual(backendFilesContaining(p), [], `${key} is in the backend in clear`);
            assert.ok(!output.includes(p), `pulumi printed ${key}`);
        }
        assert.deepStrictEqual(backendFilesContaining("PRIVATE KEY-----"), [], "the SSH key is in the backend in clear");
        // Pulumi's own log of each run's RPCs, secrets and all, is off in the Pulumi home scripts/env.sh makes.
        const autoLog = `${process.env.REDIS_HA_CACHE}/pulumi-home/logs`;
        if (process.env.PULUMI_HOME === `${process.env.REDIS_HA_CACHE}/pulumi-home`) {
            const stat = fs.statSync(autoLog);
            assert.ok(stat.isFile() && stat.size === 0, `${autoLog} is not the empty file that keeps Pulumi from logging the run`);
        }
        for (const h of hosts) {
            const patterns = Object.values(passwords).map((p) => `-e '${p}'`).join(" ");
            const readable = onHost(h.name, `find /etc /var /tmp /run /root /home /srv /opt -xdev -type f -perm -o=r -size -2M 2>/dev/null | xargs -r grep -lF ${patterns} 2>/dev/null || true`);
            assert.strictEqual(readable.trim(), "", `world-readable files on ${h.name} hold a password`);
        }
    });

    it("changes nothing and runs no remote command on a second up", async () => {
        const before = await Promise.all(hosts.map((h) => runId(h.ip)));
        const [up, secs] = await timed(() => stack.up({ onOutput }));
        figures.push(`pulumi up (no-op): ${secs.toFixed(1)} s, ${up.summary.resourceChanges?.same ?? 0} resources unchanged, 0 remote commands run`);
        assert.deepStrictEqual(onlySame(up.summary), []);
        assert.deepStrictEqual(await Promise.all(hosts.map((h) => runId(h.ip))), before, "a Redis restarted");
        await stack.preview({ expectNoChanges: true });
    });

    it("records the resource graph: host key, then the SSH key step beside prep (facts, packages, kernel side by side), then Redis, the election, Sentinel, the membership, the rolling restart, the agreement", () => {
        const byName = new Map(exportState(stack.name).resources.map((r) => [r.urn.split("::").pop()!, r.dependencies ?? []]));
        const dependsOn = (a: string, b: string) => assert.ok(byName.get(a)!.some((d) => d.endsWith(`::${b}`)), `${a} does not depend on ${b}`);
        for (const h of hosts) {
            dependsOn(`${h.name}-host-key`, "redis-ha-runtime");
            dependsOn(`${h.name}-ssh-key`, `${h.name}-host-key`);
            // facts, packages and the kernel side by side, once the host key is known; not after the
            // SSH key step, which only comes first while the key rotates (rolling.test.ts)
            for (const step of ["facts", "packages", "kernel"]) {
                dependsOn(`${h.name}-${step}`, `${h.name}-host-key`);
                assert.ok(!byName.get(`${h.name}-${step}`)!.some((d) => d.endsWith(`::${h.name}-ssh-key`)), `${h.name}-${step} waits for the SSH key step`);
            }
            dependsOn(`${h.name}-redis`, `${h.name}-packages`);
            dependsOn(`${h.name}-redis`, `${h.name}-kernel`);
            dependsOn("redis-ha-master-election", `${h.name}-redis`);
            dependsOn(`${h.name}-sentinel`, "redis-ha-master-election");
            dependsOn("redis-ha-membership", `${h.name}-sentinel`);
        }
        dependsOn("redis-ha-rolling-restart", "redis-ha-membership");
        dependsOn("redis-ha-sentinel-agreement", "redis-ha-rolling-restart");
    });

    it("fails over when the master's redis-server stops; a re-run keeps the new master; the old one rejoins as a replica", async () => {
        const old = byIp((await sentinelMaster())!);
        onHost(old.name, "systemctl stop redis-server");
        const took = await waitFor("failover after redis-server stop", async () => ((await sentinelMaster()) ?? old.ip) !== old.ip, 60);
        const now = byIp((await sentinelMaster())!);
        figures.push(`failover, master's redis-server stopped (down-after 2 s): ${took.toFixed(1)} s, ${old.name} -> ${now.name}`);
        // The stop hook saw both replicas take every write, so Redis shut down without waiting for their next report.
        assert.match(onHost(old.name, "journalctl -u redis-server -o cat | grep redis-stop-hook | tail -1"), /2 of 2 replicas have every write/);
        const up = await stack.up({ onOutput });
        assert.deepStrictEqual(onlySame(up.summary), [], "the re-run after a failover changed something");
        assert.strictEqual((await role(now.ip))?.[0], "master", "the re-run demoted the new master");
        assert.strictEqual(up.outputs.currentMaster.value.name, now.name, "the output does not name the master the sentinels name");
        onHost(old.name, "systemctl start redis-server");
        const rejoin = await waitFor(`${old.name} rejoining as a replica`, async () => {
            const r = await role(old.ip);
            return r?.[0] === "slave" && r[1] === now.ip && r[3] === "connected";
        }, 60);
        figures.push(`old master back as a linked replica ${rejoin.toFixed(1)} s after its restart`);
    });

    it("fails over when the master's host powers off; a re-run refuses, naming it; marked down, a re-run keeps the master; it rejoins when back", async () => {
        const old = byIp((await sentinelMaster())!);
        lab("poweroff", old.name);
        const took = await waitFor("failover after power-off", async () => ((await sentinelMaster()) ?? old.ip) !== old.ip, 60);
        const now = byIp((await sentinelMaster())!);
        figures.push(`failover, master's host powered off (down-after 2 s): ${took.toFixed(1)} s, ${old.name} -> ${now.name}`);
        const nodes = (down: boolean) => ({ value: JSON.stringify(hosts.map((h) => ({ name: h.name, host: h.ip, ...(down && h === old ? { down: true } : {}) }))) });
        try {
            await assert.rejects(stack.up({ onOutput }), (e: Error) => (assert.match(e.message, new RegExp(`${old.name} \\(${old.ip.replace(/\./g, "\\.")}:22\\)`)), true));
            await stack.setConfig("redis-ha:nodes", nodes(true));
            const up = await stack.up({ onOutput });
            // Only the election, the membership, the rolling restart (it asks the live nodes, none needs
            // one) and the agreement take note (no remote command runs).
            assert.deepStrictEqual(onlySame(up.summary), [["update", 4]], "the re-run with a host down changed more");
            assert.strictEqual(up.outputs.currentMaster.value.name, now.name);
        } finally {
            lab("start", old.name); // the tests after this one need it
        }
        await stack.setConfig("redis-ha:nodes", nodes(false));
        const rejoin = await waitFor(`${old.name} rejoining as a replica`, async () => {
            const r = await role(old.ip);
            return r?.[0] === "slave" && r[1] === now.ip && r[3] === "connected";
        }, 90);
        figures.push(`old master's host back: linked replica ${rejoin.toFixed(1)} s after boot`);
        assert.deepStrictEqual(onlySame((await stack.up({ onOutput })).summary), [["update", 4]], "unmarking the node changed more than the election, the membership, the rolling restart and the agreement");
        const redis = new Redis({ ...(await stack.outputs()).ioredis.value, lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
            await redis.connect();
            assert.strictEqual(await redis.get("e2e:greeting"), "hello", "data written before the failovers is gone");
        } finally {
            redis.disconnect();
        }
    });

    it("applies a new maxmemory on every node at runtime: no restart, no failover", async () => {
        const master = await sentinelMaster();
        const before = await Promise.all(hosts.map((h) => runId(h.ip)));
        await stack.setConfig("redis-ha:redis", { value: JSON.stringify({ maxmemory: "96mb" }) });
        const leaks = sampleProcessLists(); // updates pass passwords to redis-cli too
        const [up, secs] = await timed(() => stack.up({ onOutput }));
        assert.deepStrictEqual(leaks(), [], "a password showed in a process list");
        figures.push(`pulumi up changing maxmemory: ${secs.toFixed(1)} s`);
        assert.deepStrictEqual(onlySame(up.summary), [["update", hosts.length + 2]], "expected the Redis commands, the master election and the agreement to update");
        for (const h of hosts) {
            assert.strictEqual(await ask(h.ip, 6379, admin, async (c) => ((await c.config("GET", "maxmemory")) as string[])[1]), String(96 * 1024 * 1024));
            assert.match(onHost(h.name, "grep '^maxmemory ' /etc/redis/redis.conf"), /^maxmemory 96mb$/m);
        }
        assert.deepStrictEqual(await Promise.all(hosts.map((h) => runId(h.ip))), before, "a Redis restarted");
        assert.strictEqual(await sentinelMaster(), master, "the master changed");
    });

    it("makes the agreement waiter name the sentinel that disagrees, and what it said", async () => {
        const ghost = { name: "ghost", host: hosts[0].ip.replace(/\.\d+$/, ".250"), port: 26379 };
        const inputs = {
            masterName: "mymaster",
            sentinels: [...hosts.map((h) => ({ name: h.name, host: h.ip, port: 26379 })), ghost],
            redis: hosts.map((h) => ({ name: h.name, host: h.ip, port: 6379 })),
            adminPassword: passwords.adminPassword,
            timeoutSeconds: 3,
            revisions: [],
            providerVersion: "test",
        };
        await assert.rejects(awaitAgreement(inputs), new RegExp(`did not agree within 3 s: sentinel rha1 does not see sentinel ghost \\(${ghost.host.replace(/\./g, "\\.")}:26379\\) healthy yet`));
        await assert.rejects(
            awaitAgreement({ ...inputs, sentinels: [ghost] }),
            new RegExp(`did not agree within 3 s: sentinel ghost \\(${ghost.host.replace(/\./g, "\\.")}:26379\\) does not answer`),
        );
        await assert.rejects(awaitAgreement({ ...inputs, sentinels: inputs.sentinels.slice(0, 3), masterName: "other" }), /sentinel rha1 .* does not monitor other/);
    });

    it("destroys everything: hosts clean, data kept", async () => {
        const [, secs] = await timed(() => stack.destroy({ onOutput }));
        figures.push(`pulumi destroy: ${secs.toFixed(1)} s`);
        for (const h of hosts) {
            const left = onHost(
                h.name,
                "pgrep -c redis || true; dpkg-query -W -f='${Status}\\n' redis-server redis-sentinel | grep -c '^install ok' || true; " +
                    "ls /var/lib/redis-ha /etc/sysctl.d/60-redis-ha.conf /etc/systemd/system/redis-ha-thp.service /etc/redis/users.acl /etc/redis-ha /usr/local/lib/redis-ha /etc/systemd/system/redis-server.service.d /etc/systemd/system/redis-sentinel.service.d 2>/dev/null | wc -l; " +
                    "grep -c redis-ha /etc/redis/redis.conf /etc/redis/sentinel.conf 2>/dev/null | paste -sd' '; ls /var/lib/redis",
            );
            const [procs, pkgs, files, confs, ...data] = left.trim().split("\n");
            assert.deepStrictEqual([procs, pkgs, files], ["0", "0", "0"], `${h.name} is not clean:\n${left}`);
            assert.strictEqual(confs, "/etc/redis/redis.conf:0 /etc/redis/sentinel.conf:0");
            assert.ok(data.includes("appendonlydir"), `${h.name} lost its data: ${data.join(" ")}`);
        }
        await stack.workspace.removeStack(stack.name);
    });
});
