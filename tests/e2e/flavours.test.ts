// What runs, for real: the cluster's core on Debian 13 (trixie) hosts, once with Redis 8 and once
// with Valkey 8 (redis.server valkey), on the lab's hosts rha4-rha6 booted as trixie (Debian 12
// with Redis 7 is the cluster test's), with the VIP proxy (HAProxy 3.0) on two of them. Each: up,
// the agreement, ioredis from the outputs through the sentinels and the write VIP, a failover
// under a writer that a re-run keeps (no acknowledged write lost), and destroy. The two share the hosts one after the other: the second also shows that a destroyed
// cluster leaves a server ready for the other server.
import * as assert from "assert";
import * as net from "net";
import Redis from "ioredis";
import { majority } from "../../components/config";
import { discoverMaster } from "../../components/discovery";
import { askRedis, freshStack, lab, labAgreement, labConfig, labHosts, newPasswords, onHost, timed, waitFor, type LabHost } from "./lab";

const HOSTS = ["rha4", "rha5", "rha6"];
const SUITE = "trixie";

for (const server of ["redis", "valkey"] as const) {
    describe(`lab flavours: ${server} on Debian 13 (${HOSTS.join(", ")})`, function () {
        // The exporter (metrics.enabled) is tested once, with Redis 8.
        const metrics = server === "redis";
        const passwords = {
            ...newPasswords(),
            healthCheckPassword: `hc-${server}-0123456789abcdef`,
            statsPassword: `st-${server}-0123456789abcdef`,
            ...(metrics ? { metricsPassword: `mx-${Date.now().toString(36)}-0123456789abcdef` } : {}),
        };
        const figures: string[] = [];
        const saved = { hosts: process.env.LAB_HOSTS, suites: HOSTS.map((h) => process.env[`LAB_SUITE_${h}`]) };
        let hosts: LabHost[];
        let stack: Awaited<ReturnType<typeof freshStack>>;
        const byIp = (ip: string) => hosts.find((h) => h.ip === ip)!;
        const admin = { username: "admin", password: passwords.adminPassword };
        const info = (ip: string, section: string) => askRedis({ host: ip, port: 6379, ...admin }, (c) => c.info(section));
        const subnet = () => hosts[0].ip.replace(/\.\d+$/, "");
        const sentinelMaster = async () =>
            (await discoverMaster(hosts.map((h) => ({ host: h.ip, port: 26379 })), "mymaster", passwords.sentinelPassword, { minVotes: majority(hosts.length) }))?.host;

        before(async () => {
            process.env.LAB_HOSTS = "6";
            for (const h of HOSTS) process.env[`LAB_SUITE_${h}`] = SUITE;
            // Off first: a host that another test started as Debian 12 gets a new Debian 13 disk.
            for (const h of HOSTS) lab("poweroff", h);
            for (const h of HOSTS) lab("start", h);
            hosts = labHosts().filter((h) => HOSTS.includes(h.name));
            stack = await freshStack(`lab-${server}-${SUITE}`, {
                ...labConfig(hosts, passwords),
                "redis-ha:redis": { value: JSON.stringify({ maxmemory: "64mb", server }) },
                // VIPs of their own: .100 and .101 are the other tests'.
                "redis-ha:proxy": { value: JSON.stringify({ nodes: HOSTS.slice(0, 2), writeVip: `${subnet()}.110`, readVip: `${subnet()}.111` }) },
                // down-after 2 s, as in the cluster test: a busy 2-core machine must not fail over by itself.
                "redis-ha:sentinel": { value: JSON.stringify({ downAfterMilliseconds: 2000, failoverTimeout: 10000, agreementTimeoutSeconds: 120 }) },
                ...(metrics ? { "redis-ha:metrics": { value: JSON.stringify({ enabled: true }) } } : {}),
            });
        });

        /** What a node's exporter says for its Redis ("redis") or its Sentinel ("sentinel"), from the stack's metricsTargets. */
        const scrape = async (name: string, what: "redis" | "sentinel") => {
            const target = ((await stack.outputs()).metricsTargets.value as { node: string; redis: string; sentinel: string }[]).find((t) => t.node === name)!;
            return (await fetch(target[what], { signal: AbortSignal.timeout(5000) })).text();
        };
        const metric = (text: string, name: string) => new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1];
        const roleOf = (text: string) => /^redis_instance_info\{[^}]*role="(\w+)"/m.exec(text)?.[1];

        after(async () => {
            console.log(`    figures:\n${figures.map((f) => `      ${f}`).join("\n")}`);
            await stack?.destroy().catch(() => undefined);
            await stack?.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
            if (server === "valkey") for (const h of HOSTS) lab("poweroff", h); // the next tests boot them as Debian 12
            if (saved.hosts === undefined) delete process.env.LAB_HOSTS;
            else process.env.LAB_HOSTS = saved.hosts;
            HOSTS.forEach((h, i) => (saved.suites[i] === undefined ? delete process.env[`LAB_SUITE_${h}`] : (process.env[`LAB_SUITE_${h}`] = saved.suites[i])));
        });

        it(`deploys ${server} 8 on Debian 13: its own packages, units and paths; the sentinels agree; ioredis from the outputs works`, async () => {
            const [up, secs] = await timed(() => stack.up());
            figures.push(`pulumi up (fresh, 3 nodes, ${server} on Debian 13): ${secs.toFixed(1)} s`);
            assert.strictEqual(up.summary.result, "succeeded");
            for (const h of hosts) {
                const node = up.outputs.nodes.value[h.name];
                assert.match(node.facts.os, /Debian GNU\/Linux 13/);
                assert.deepStrictEqual(Object.keys(node.packages).sort(), [`${server}-sentinel`, `${server}-server`, `${server}-tools`]);
                // Valkey also reports redis_version (7.2.4, the Redis it is compatible with): ask for its own.
                const version = new RegExp(`^${server}_version:([\\d.]+)`, "m").exec((await info(h.ip, "server")) ?? "")?.[1];
                assert.match(version ?? "none", /^8\./, `${h.name} runs ${server} ${version ?? "that does not answer"}`);
                assert.strictEqual(node.serverVersion, version, `${h.name}: the outputs' serverVersion`);
                if (h === hosts[0]) figures.push(`runs ${server} ${version}`);
                // Only this server's units run, with our configuration in its own directory.
                assert.strictEqual(onHost(h.name, `systemctl is-active ${server}-server ${server}-sentinel`).trim(), "active\nactive");
                assert.match(onHost(h.name, `grep -c 'Written once by redis-ha' /etc/${server}/${server}.conf /etc/${server}/sentinel.conf`), new RegExp(`/etc/${server}/${server}.conf:1\n/etc/${server}/sentinel.conf:1`));
                const other = server === "redis" ? "valkey" : "redis";
                assert.strictEqual(onHost(h.name, `dpkg-query -W -f='\${Status}\\n' ${other}-server 2>/dev/null | grep -c '^install ok' || true`).trim(), "0");
            }
            const [, agreed] = await timed(() => labAgreement(hosts, passwords.adminPassword));
            figures.push(`agreement checked again from the test: ${agreed.toFixed(1)} s`);
            const redis = new Redis({ ...up.outputs.ioredis.value, lazyConnect: true, maxRetriesPerRequest: 1 });
            try {
                await redis.connect();
                await redis.set("e2e:flavour", server);
                assert.strictEqual(await redis.get("e2e:flavour"), server);
            } finally {
                redis.disconnect();
            }
            // HAProxy 3.0 checks the nodes as the write VIP's health check user, and sends writes to the master.
            const [, vipSecs] = await timed(() => waitFor("a write through the write VIP", async () => (await askRedis(up.outputs.vipClient.value, (c) => c.set("e2e:vip", server))) === "OK", 30));
            figures.push(`write VIP (HAProxy ${onHost(HOSTS[0], "dpkg-query -W -f='${Version}' haproxy")}) took a write ${vipSecs.toFixed(1)} s after the up`);
            // The start hook runs under this server's sentinel unit: after a restart, it sets the ping and INFO periods.
            onHost(hosts[2].name, `systemctl restart ${server}-sentinel`);
            await waitFor("the start hook in the journal", async () => /pings every 300 ms, reads INFO every 1000 ms/.test(onHost(hosts[2].name, `journalctl -u ${server}-sentinel -o cat | grep sentinel-start-hook | tail -1`)), 30);
        });

        if (metrics) {
            it("exports metrics: each node's Redis and Sentinel, on the private address only, as a user that reads no data; a /scrape of another server gets no password", async () => {
                const targets = (await stack.outputs()).metricsTargets.value as { node: string; redis: string; sentinel: string }[];
                assert.deepStrictEqual(targets.map((t) => t.node), HOSTS);
                const master = byIp((await sentinelMaster())!);
                for (const h of hosts) {
                    const redisText = await scrape(h.name, "redis");
                    assert.strictEqual(metric(redisText, "redis_up"), "1", `${h.name}: redis_up`);
                    assert.strictEqual(roleOf(redisText), h === master ? "master" : "slave", `${h.name}: role`);
                    const sentinelText = await scrape(h.name, "sentinel");
                    assert.strictEqual(metric(sentinelText, "redis_up"), "1", `${h.name}: the sentinel's redis_up`);
                    assert.strictEqual(metric(sentinelText, "redis_sentinel_masters"), "1", `${h.name}: sentinel masters`);
                    // Bound to the private address, not to every address.
                    assert.match(onHost(h.name, "ss -Hltn 'sport = :9121' | awk '{print $4}'").trim(), new RegExp(`^${h.ip.replace(/\./g, "\\.")}:9121$`));
                }
                assert.strictEqual(metric(await scrape(master.name, "redis"), "redis_connected_slaves"), "2");
                // The exporter's user reads no key and no configuration (CONFIG GET would show masterauth).
                const asMetrics = { host: master.ip, port: 6379, username: "metrics", password: passwords.metricsPassword };
                const denied = async (args: string[]) => askRedis(asMetrics, (c) => c.call(args[0], ...args.slice(1)).then(() => "allowed", (e: Error) => e.message));
                assert.match((await denied(["GET", "e2e:flavour"])) ?? "", /NOPERM/);
                assert.match((await denied(["CONFIG", "GET", "masterauth"])) ?? "", /NOPERM/);
                // The attacker who reaches the port names a server of theirs: it hears no AUTH, and
                // with our user's name in the target (redigo then takes the name for a password), never the password.
                const heardBy = async (userInfo: string) => {
                    let heard = "";
                    // It answers an error and hangs up: a login, if any, comes first, when the exporter dials.
                    const trap = net.createServer((sock) => sock.on("data", (d) => {
                        heard += d.toString("latin1");
                        if (!sock.writableEnded) sock.end("-ERR not redis\r\n");
                    }));
                    await new Promise<void>((r) => trap.listen(0, hosts[0].ip.replace(/\.\d+$/, ".1"), () => r()));
                    try {
                        const { address, port } = trap.address() as net.AddressInfo;
                        await fetch(`http://${hosts[0].ip}:9121/scrape?target=redis://${userInfo}${address}:${port}`, { signal: AbortSignal.timeout(8000) }).catch(() => undefined);
                        await new Promise((r) => setTimeout(r, 300));
                    } finally {
                        trap.close();
                    }
                    assert.ok(heard.length > 0, "the exporter never connected to the fake server: the check proves nothing");
                    assert.ok(!heard.includes(passwords.metricsPassword!), `the exporter sent the metrics password to redis://${userInfo}<fake server>`);
                    return heard;
                };
                const plainTarget = await heardBy("");
                assert.ok(!/AUTH/i.test(plainTarget), `the exporter tried to log in to a foreign server: ${JSON.stringify(plainTarget)}`);
                await heardBy("metrics@");
            });
        }

        it("fails over under a writer when the master's server stops, loses no acknowledged write, and a re-run keeps the new master", async () => {
            const old = byIp((await sentinelMaster())!);
            const redis = new Redis({ ...(await stack.outputs()).ioredis.value, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
            redis.on("error", () => undefined);
            const acked: number[] = [];
            let writing = true;
            const writer = (async () => {
                for (let i = 0; writing; i++) {
                    try {
                        await redis.set(`e2e:w:${i}`, String(i));
                        acked.push(i);
                    } catch {
                        await new Promise((r) => setTimeout(r, 50));
                    }
                }
            })();
            try {
                await new Promise((r) => setTimeout(r, 500));
                onHost(old.name, `systemctl stop ${server}-server`);
                const took = await waitFor("failover after the master's server stopped", async () => ((await sentinelMaster()) ?? old.ip) !== old.ip, 60);
                const now = byIp((await sentinelMaster())!);
                await waitFor("writes through the new master", async () => acked.length > 0 && (await askRedis({ host: now.ip, port: 6379, ...admin }, (c) => c.exists(`e2e:w:${acked[acked.length - 1]}`))) === 1, 30);
                writing = false;
                await writer;
                const missing: number[] = [];
                await askRedis({ host: now.ip, port: 6379, ...admin }, async (c) => {
                    for (const i of acked) if ((await c.exists(`e2e:w:${i}`)) !== 1) missing.push(i);
                });
                figures.push(`failover (${server}-server stopped, down-after 2 s): ${took.toFixed(1)} s, ${old.name} -> ${now.name}; writes acknowledged ${acked.length}, lost ${missing.length}`);
                // The stop hook ran under this server's unit, and saw both replicas take every write.
                assert.match(onHost(old.name, `journalctl -u ${server}-server -o cat | grep redis-stop-hook | tail -1`), /2 of 2 replicas have every write/);
                assert.deepStrictEqual(missing, [], "acknowledged writes are missing on the new master");
                const up = await stack.up();
                assert.strictEqual(up.outputs.currentMaster.value.name, now.name, "the re-run does not name the master the sentinels name");
                assert.deepStrictEqual(Object.entries(up.summary.resourceChanges ?? {}).filter(([op]) => op !== "same"), [], "the re-run after a failover changed something");
                if (metrics) {
                    // The exporters follow: the new master's says master, the stopped one's says down.
                    assert.strictEqual(roleOf(await scrape(now.name, "redis")), "master");
                    assert.strictEqual(metric(await scrape(old.name, "redis"), "redis_up"), "0");
                }
                onHost(old.name, `systemctl start ${server}-server`);
                await waitFor(`${old.name} back as a replica of ${now.name}`, async () => /role:slave[\s\S]*master_host:([\d.]+)[\s\S]*master_link_status:up/.exec((await info(old.ip, "replication")) ?? "")?.[1] === now.ip, 60);
                if (metrics) await waitFor("the new master's exporter counting 2 replicas", async () => metric(await scrape(now.name, "redis"), "redis_connected_slaves") === "2", 30);
            } finally {
                writing = false;
                redis.disconnect();
            }
        });

        if (metrics) {
            it("turns metrics off: the exporter, its package and the metrics users gone", async () => {
                await stack.setConfig("redis-ha:metrics", { value: JSON.stringify({ enabled: false }) });
                const up = await stack.up();
                assert.strictEqual(up.outputs.metricsTargets, undefined);
                for (const h of hosts) {
                    assert.strictEqual(onHost(h.name, "dpkg-query -W -f='${Status}' prometheus-redis-exporter 2>/dev/null | grep -c '^install ok' || true").trim(), "0", `${h.name}: exporter package`);
                    for (const port of [6379, 26379]) {
                        const answer = await askRedis({ host: h.ip, port, username: "metrics", password: passwords.metricsPassword }, (c) => c.ping());
                        assert.strictEqual(answer, undefined, `${h.name}:${port} still takes the metrics user`);
                    }
                }
            });
        }

        it("destroys the cluster: our services gone, the packages removed, the data kept", async () => {
            const [, secs] = await timed(() => stack.destroy());
            figures.push(`pulumi destroy: ${secs.toFixed(1)} s`);
            for (const h of hosts) {
                const left = onHost(h.name, `pgrep -c '^${server}-' || true; dpkg-query -W -f='\${Status}\\n' ${server}-server ${server}-sentinel 2>/dev/null | grep -c '^install ok' || true; ls /var/lib/redis-ha /etc/${server}/users.acl 2>/dev/null | wc -l; ls /var/lib/${server}`);
                const [procs, pkgs, files, ...data] = left.trim().split("\n");
                assert.deepStrictEqual([procs, pkgs, files], ["0", "0", "0"], `${h.name} is not clean:\n${left}`);
                assert.ok(data.includes("appendonlydir"), `${h.name} lost its data: ${data.join(" ")}`);
                if (metrics) assert.strictEqual(onHost(h.name, "dpkg-query -W -f='${Status}' prometheus-redis-exporter 2>/dev/null | grep -c '^install ok' || true; ls /etc/redis-ha-exporter 2>/dev/null | wc -l").trim(), "0\n0", `${h.name}: the exporter is left`);
            }
        });
    });
}
