// The attacks of the security review, played for real against a lab cluster with the VIP proxy,
// deployed with passwords made of every ASCII punctuation character. Each test is an attack
// (or a bad day) that did harm before and must do none now:
//   - the `app` user announces a fake master on Sentinel's hello channel;
//   - the Sentinel credentials in the outputs try to reconfigure Sentinel;
//   - a server answers with another SSH host key;
//   - the active proxy and the master are cut off from the rest, clients still writing to them;
//   - Debian's units listen before our configuration exists.
import * as assert from "assert";
import Redis, { type RedisOptions } from "ioredis";
import { labAsync } from "../../lab/hosts";
import { askRedis, exportState, freshStack, labConfig, labHosts, labVips, onHost, waitFor } from "./lab";
import { PASSWORD_KEYS, PROXY_PASSWORD_KEYS } from "../../components/config";
import { fieldsOf } from "../../components/redis-client";

const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const BRIDGE = "rha-br0";

describe("lab security: attacks that must do no harm", function () {
    const hosts = labHosts();
    const [h1, h2, h3] = hosts;
    const subnet = h1.ip.replace(/\.\d+$/, "");
    const { writeVip, readVip } = labVips(hosts);
    // Every password: all 32 punctuation characters, then something to tell them apart.
    const passwords = Object.fromEntries(
        [...PASSWORD_KEYS, ...PROXY_PASSWORD_KEYS].map((k, i) => [k, `${PUNCTUATION}${k}${i}`]),
    ) as Record<(typeof PASSWORD_KEYS)[number] | (typeof PROXY_PASSWORD_KEYS)[number], string>;
    const figures: string[] = [];
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let outputs: Record<string, any> = {};

    const admin = (host: string) => ({ host, port: 6379, username: "admin", password: passwords.adminPassword });
    const app = (host: string) => ({ host, port: 6379, username: "app", password: passwords.appPassword });
    const discovery = (host: string) => ({ host, port: 26379, username: "discovery", password: passwords.sentinelPassword });
    const errorOf = (opts: RedisOptions, ...command: string[]) =>
        askRedis(opts, (c) => c.call(command[0], ...command.slice(1)).then((r) => `ok: ${JSON.stringify(r)}`, (e: Error) => e.message));
    /** What each sentinel names as master. */
    const sentinelMasters = () =>
        Promise.all(hosts.map((h) => askRedis(discovery(h.ip), async (c) => ((await c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")) as string[]).join(":"))));

    before(async () => {
        stack = await freshStack("lab-security", {
            ...labConfig(hosts, passwords),
            "redis-ha:proxy": { value: JSON.stringify({ nodes: [h1.name, h2.name], writeVip, readVip }) },
        });
    });

    after(() => console.log(`    figures:\n${figures.map((f) => `      ${f}`).join("\n")}`));

    it("deploys with punctuation passwords, and no Redis or Sentinel listener ever runs without our configuration", async () => {
        // Samples listeners every 50 ms, each line tagged with the config files that are ours then.
        for (const h of hosts) {
            onHost(
                h.name,
                "setsid bash -c 'while :; do ours=$(grep -l redis-ha /etc/redis/redis.conf /etc/redis/sentinel.conf 2>/dev/null | tr \"\\n\" \" \"); " +
                    "ss -Hltnp | grep -E \":(6379|26379) \" | sed \"s|^|[$ours] |\"; sleep 0.05; done > /root/listen-samples' >/dev/null 2>&1 < /dev/null & echo $! > /root/listen-sampler.pid",
            );
        }
        const up = await stack.up();
        outputs = Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value]));
        for (const h of hosts) {
            const samples = onHost(h.name, "kill $(cat /root/listen-sampler.pid); sleep 0.2; sort -u /root/listen-samples; rm -f /root/listen-samples /root/listen-sampler.pid");
            const lines = samples.trim().split("\n").filter(Boolean);
            assert.ok(lines.some((l) => l.includes(":26379 ")), `${h.name}: the sampler saw no Sentinel at all:\n${samples}`);
            const bad = lines.filter((l) => {
                const ours = /^\[(.*?)\]/.exec(l)![1];
                const wildcard = /(\*|0\.0\.0\.0|\[::\]):(6379|26379) /.test(l);
                const port = /:26379 /.test(l) ? "sentinel.conf" : "redis.conf";
                return wildcard || !ours.includes(port);
            });
            assert.deepStrictEqual(bad, [], `${h.name}: a listener without our configuration`);
        }
        figures.push(`fresh up with punctuation passwords: ${up.summary.resourceChanges?.create} resources created`);
    });

    it("works end to end with those passwords: replication, Sentinel, both VIPs and the stats page", async () => {
        const redis = new Redis({ ...outputs.ioredis, lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
            await redis.connect();
            await redis.set("sec:probe", "through the sentinels");
        } finally {
            redis.disconnect();
        }
        assert.strictEqual(await askRedis({ ...outputs.vipClient }, (c) => c.get("sec:probe")), "through the sentinels");
        await waitFor("the read VIP serving the key", async () => (await askRedis(app(readVip), (c) => c.get("sec:probe"))) === "through the sentinels", 10);
        for (const h of [h2, h3]) {
            assert.match(String(await askRedis(admin(h.ip), (c) => c.info("replication"))), /master_link_status:up/);
        }
        const auth = Buffer.from(`admin:${passwords.statsPassword}`).toString("base64");
        const stats = await fetch(`${outputs.proxyStats[0]};csv`, { headers: { Authorization: `Basic ${auth}` } });
        assert.strictEqual(stats.status, 200);
        // A prefix of the password (what a `#` comment used to leave) must not pass.
        const prefix = Buffer.from(`admin:${passwords.statsPassword.slice(0, 2)}`).toString("base64");
        assert.strictEqual((await fetch(outputs.proxyStats[0], { headers: { Authorization: `Basic ${prefix}` } })).status, 401);
    });

    it("keeps the app user off Sentinel's hello channel: a fake master announcement is refused, other channels work", async () => {
        const before = await sentinelMasters();
        const fake = `${subnet}.250,26379,${"f".repeat(40)},99,mymaster,${subnet}.250,6379,99`;
        assert.match(String(await errorOf(app(h1.ip), "PUBLISH", "__sentinel__:hello", fake)), /NOPERM/);
        assert.match(String(await errorOf(app(h1.ip), "SPUBLISH", "__sentinel__:hello", fake)), /NOPERM/);
        assert.match(String(await errorOf(app(h1.ip), "EVAL", "return redis.call('publish', '__sentinel__:hello', ARGV[1])", "0", fake)), /NOPERM|can't publish to the channel/);
        assert.match(String(await errorOf(app(h1.ip), "SUBSCRIBE", "__sentinel__:hello")), /NOPERM/);
        assert.match(String(await errorOf(app(h1.ip), "PSUBSCRIBE", "*")), /NOPERM/);
        // Everything else an application does with pub/sub still works.
        assert.strictEqual(await errorOf(app(h1.ip), "PUBLISH", "orders:new", "1"), "ok: 0");
        assert.strictEqual(await errorOf(app(h1.ip), "PUBLISH", "__sentinel__", "1"), "ok: 0");
        const sub = new Redis({ ...app(h1.ip), lazyConnect: true, maxRetriesPerRequest: 0 });
        try {
            await sub.connect();
            await sub.subscribe("orders:new");
            const got = new Promise<string>((resolve) => sub.on("message", (_ch, m) => resolve(m)));
            await askRedis(app(h1.ip), (c) => c.publish("orders:new", "42"));
            assert.strictEqual(await got, "42");
        } finally {
            sub.disconnect();
        }
        await new Promise((r) => setTimeout(r, 3000));
        assert.deepStrictEqual(await sentinelMasters(), before, "the sentinels changed their mind");
    });

    it("lets the Sentinel credentials in the outputs discover, and nothing else", async () => {
        const s = { host: h1.ip, port: 26379, username: outputs.ioredis.sentinelUsername, password: outputs.ioredis.sentinelPassword };
        assert.deepStrictEqual(await askRedis(s, (c) => c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")), [h1.ip, "6379"]);
        assert.strictEqual(((await askRedis(s, (c) => c.call("SENTINEL", "SENTINELS", "mymaster"))) as unknown[]).length, 2);
        assert.strictEqual(((await askRedis(s, (c) => c.call("SENTINEL", "REPLICAS", "mymaster"))) as unknown[]).length, 2);
        assert.strictEqual(((await askRedis(s, (c) => c.call("SENTINEL", "MASTERS"))) as unknown[]).length, 1);
        const attacks = [
            ["SENTINEL", "SET", "mymaster", "auth-pass", "x"],
            ["SENTINEL", "REMOVE", "mymaster"],
            ["SENTINEL", "MONITOR", "evil", `${subnet}.250`, "6379", "1"],
            ["SENTINEL", "FAILOVER", "mymaster"],
            ["SENTINEL", "RESET", "*"],
            ["SENTINEL", "CONFIG", "SET", "resolve-hostnames", "yes"],
            ["SENTINEL", "CONFIG", "GET", "*"],
            ["SENTINEL", "FLUSHCONFIG"],
            ["ACL", "SETUSER", "evil", "on", ">evil-password-0123456789", "+@all"],
            ["ACL", "LIST"],
            ["PUBLISH", "__sentinel__:hello", "x"],
            ["SHUTDOWN"],
        ];
        for (const a of attacks) assert.match(String(await errorOf(s, ...a)), /NOPERM/, a.join(" "));
        // Sentinel's default user is off: the password alone (no user name) opens nothing.
        assert.match(String(await errorOf({ host: h1.ip, port: 26379 }, "AUTH", passwords.sentinelPassword)), /WRONGPASS/);
        assert.match(String(await errorOf({ host: h1.ip, port: 26379 }, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")), /NOAUTH/);
        // The sentinels' own user is only good among sentinels.
        const peer = { host: h1.ip, port: 26379, username: "sentinel", password: passwords.sentinelAuthPassword };
        assert.match(String(await errorOf(peer, "SENTINEL", "SET", "mymaster", "quorum", "1")), /NOPERM/);
        assert.match(String(await errorOf(peer, "PUBLISH", "other", "x")), /NOPERM/);
    });

    it("fails over with the restricted users, and Sentinel refused none of its own commands", async () => {
        onHost(h1.name, "systemctl stop redis-server");
        try {
            await waitFor("a new master", async () => (await sentinelMasters()).every((m) => m !== undefined && !m.startsWith(`${h1.ip}:`)), 60);
        } finally {
            onHost(h1.name, "systemctl start redis-server");
        }
        await waitFor(`${h1.name} back as a replica`, async () => /role:slave[\s\S]*master_link_status:up/.test(String(await askRedis(admin(h1.ip), (c) => c.info("replication")))), 60);
        for (const h of hosts) {
            const log = await askRedis({ host: h.ip, port: 26379, username: "admin", password: passwords.adminPassword }, (c) => c.call("ACL", "LOG", "128"));
            assert.ok(Array.isArray(log), `${h.name}: ACL LOG did not answer`);
            const denied = (log as unknown[][]).map((e) => {
                const m: Record<string, string> = {};
                for (let i = 0; i + 1 < e.length; i += 2) m[String(e[i])] = String(e[i + 1]);
                return `${m.username} ${m.reason} ${m.object}`;
            });
            if (h === h1) assert.ok(denied.some((d) => d.startsWith("discovery command sentinel|set")), `the attacks above are not in ACL LOG: ${denied.join("; ")}`);
            // Only the attacks above may show: never one of the sentinels' own commands.
            const ours = denied.filter((d) => /^(sentinel|admin) /.test(d) && !["sentinel command sentinel|set", "sentinel channel other"].includes(d));
            assert.deepStrictEqual(ours, [], `${h.name} refused a sentinel its own work`);
        }
    });

    it("refuses a server that presents another SSH host key, before sending it anything; accepts it once told", async () => {
        const since = onHost(h3.name, "date +%s").trim();
        onHost(h3.name, "rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -A; systemctl restart ssh; logger redis-ha-test-new-host-key");
        await stack.setConfig("redis-ha:redis", { value: JSON.stringify({ maxmemory: "80mb" }) });
        await assert.rejects(stack.up(), (e: Error) => {
            assert.match(e.message, new RegExp(`${h3.ip.replace(/\./g, "\\.")}:22`));
            assert.match(e.message, /SHA256:[A-Za-z0-9+/]{43}[\s\S]*SHA256:[A-Za-z0-9+/]{43}/);
            assert.match(e.message, new RegExp(`${h3.name}-host-key`));
            return true;
        });
        // sshd logs every login: since the new key, none but the one asking.
        const logins = onHost(h3.name, `journalctl --since @${since} -o cat | sed -n '/redis-ha-test-new-host-key/,$p' | grep -c 'Accepted publickey' || true`);
        assert.strictEqual(logins.trim(), "1", "something logged in to the impostor");
        assert.strictEqual(onHost(h3.name, "grep '^maxmemory ' /etc/redis/redis.conf").trim(), "maxmemory 64mb");
        const urn = exportState(stack.name).resources.map((r) => r.urn).find((u) => u.endsWith(`::${h3.name}-host-key`))!;
        assert.ok(urn, "no host key resource in the state");
        const up = await stack.up({ replace: [urn] });
        assert.strictEqual(up.summary.result, "succeeded");
        assert.strictEqual(onHost(h3.name, "grep '^maxmemory ' /etc/redis/redis.conf").trim(), "maxmemory 80mb");
    });

    it("cuts write-VIP sessions on a master that a majority of sentinels no longer names", async () => {
        // Make h1 (the proxy holding the VIPs) the master again, then cut h1 off from h2 and h3
        // while a client, still on h1's side, keeps writing through the write VIP.
        const holder = onHost(h1.name, `ip -o -4 addr show | grep -c ' ${writeVip}/' || true`).trim() === "1" ? h1 : h2;
        const master = async () => (await sentinelMasters()).find(Boolean)?.split(":")[0];
        if ((await master()) !== holder.ip) {
            const others = hosts.filter((h) => h !== holder);
            for (const o of others) await askRedis(admin(o.ip), (c) => c.config("SET", "replica-priority", "0"));
            const sentinelAdmin = { host: holder.ip, port: 26379, username: "admin", password: passwords.adminPassword };
            try {
                // Sentinel learns priorities from its next INFO: until then it may promote another replica.
                await waitFor("the sentinel seeing the new replica priorities", async () => {
                    const replicas = ((await askRedis(sentinelAdmin, (c) => c.call("SENTINEL", "REPLICAS", "mymaster"))) as unknown[][] | undefined)?.map(fieldsOf);
                    return !!replicas && others.every((o) => replicas.every((r) => r.ip !== o.ip || r["slave-priority"] === "0"));
                }, 30);
                await askRedis(sentinelAdmin, (c) => c.call("SENTINEL", "FAILOVER", "mymaster"));
                await waitFor(`${holder.name} master`, async () => (await master()) === holder.ip && (await sentinelMasters()).every((m) => m?.startsWith(holder.ip)), 60);
            } finally {
                for (const o of others) await askRedis(admin(o.ip), (c) => c.config("SET", "replica-priority", "100"));
            }
            await waitFor("replicas linked", async () => {
                const info = String(await askRedis(admin(holder.ip), (c) => c.info("replication")));
                return /connected_slaves:2/.test(info);
            }, 60);
        }
        const rest = hosts.filter((h) => h !== holder);
        const mac = onHost(holder.name, `cat /sys/class/net/$(ip -o -4 addr show | awk '$4 ~ /^${holder.ip.replace(/\./g, "\\.")}\\// { print $2 }')/address`).trim();
        assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        const writer = new Redis({ ...outputs.vipClient, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000, retryStrategy: () => 100 });
        writer.on("error", () => undefined);
        const acked: { n: number; at: number }[] = [];
        let n = 0;
        let stop = false;
        const loop = (async () => {
            while (!stop) {
                const i = n++;
                try {
                    await writer.set(`cut:${i}`, String(i));
                    acked.push({ n: i, at: Date.now() });
                } catch {
                    // refused or cut: counted as not acknowledged
                }
                await new Promise((r) => setTimeout(r, 20));
            }
        })();
        await waitFor("writes through the write VIP", async () => acked.length > 20, 10);
        // The client stays on the holder's side: its ARP entry for the VIP ignores the other proxy.
        const cutAt = Date.now();
        execOnMachine(`ip neigh replace ${writeVip} lladdr ${mac} dev ${BRIDGE} nud permanent`);
        // All at once and without blocking the writer: the proxy sees the cut within a fifth of a
        // check interval, sooner than four SSH sessions one after the other would let it write.
        await Promise.all(rest.flatMap((o) => [labAsync("ssh", holder.name, `ip route add blackhole ${o.ip}/32`), labAsync("ssh", o.name, `ip route add blackhole ${holder.ip}/32`)]));
        let newMaster = "";
        try {
            newMaster = (await waitFor("a new master on the other side", async () => {
                const m = await askRedis(discovery(rest[0].ip), async (c) => ((await c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")) as string[])[0]);
                return m !== undefined && m !== holder.ip;
            }, 60), (await askRedis(discovery(rest[0].ip), async (c) => ((await c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")) as string[])[0]))!);
            await new Promise((r) => setTimeout(r, 3000));
        } finally {
            for (const o of rest) {
                onHost(holder.name, `ip route del blackhole ${o.ip}/32 || true`);
                onHost(o.name, `ip route del blackhole ${holder.ip}/32 || true`);
            }
            execOnMachine(`ip neigh del ${writeVip} dev ${BRIDGE} || true`);
        }
        const afterCut = acked.filter((a) => a.at > cutAt);
        const lastOld = afterCut.length > 0 ? (afterCut[afterCut.length - 1].at - cutAt) / 1000 : 0;
        figures.push(`partition of ${holder.name} (proxy + master): ${afterCut.length} writes acknowledged through the old path after the cut, the last ${lastOld.toFixed(1)} s after it (min-replicas-max-lag alone: up to 10 s)`);
        // Once the partition heals the old master becomes a replica: what it took after the cut is gone.
        await waitFor(`${holder.name} rejoining as a replica`, async () => /role:slave[\s\S]*master_link_status:up/.test(String(await askRedis(admin(holder.ip), (c) => c.info("replication")))), 90);
        await waitFor("writes through the write VIP again", async () => acked.length > 0 && Date.now() - acked[acked.length - 1].at < 500, 60);
        stop = true;
        await loop;
        writer.disconnect();
        const present = async (i: number) => (await askRedis(admin(newMaster), (c) => c.get(`cut:${i}`))) === String(i);
        const lostBefore: number[] = [];
        for (const a of acked.filter((x) => x.at <= cutAt - 1000)) if (!(await present(a.n))) lostBefore.push(a.n);
        let lostAfter = 0;
        for (const a of afterCut) if (!(await present(a.n))) lostAfter++;
        figures.push(`acknowledged ${acked.length}: lost ${lostAfter} of the ${afterCut.length} taken by the isolated master (Redis replication is asynchronous), ${lostBefore.length} of those before the cut`);
        assert.ok(afterCut.length > 0, "no write reached the isolated master: the scenario did not happen");
        assert.deepStrictEqual(lostBefore, [], "writes acknowledged well before the cut were lost");
        assert.ok(lastOld < 5, `the isolated master took writes through the VIP for ${lastOld.toFixed(1)} s after the cut`);
    });

    it("destroys the stack", async () => {
        await stack.destroy();
        await stack.workspace.removeStack(stack.name);
    });
});

function execOnMachine(command: string) {
    require("child_process").execFileSync("bash", ["-c", command], { stdio: "ignore" });
}
