// The VIP proxy for real: HAProxy on two lab hosts with keepalived floating the VIPs, then on
// one host with static VIPs. Checked with real clients, the stats page, failovers, proxy hosts
// powered off and rebooted, the example consumer, and the failover drill (loose bounds: the
// figures are printed, not asserted).
import * as assert from "assert";
import { execFileSync } from "child_process";
import type { RedisOptions } from "ioredis";
import { majority } from "../../components/config";
import { discoverMaster } from "../../components/discovery";
import { benchVip } from "../../scripts/drill/bench";
import { formatTable, runDrill } from "../../scripts/drill/drill";
import { askRedis, waitFor, freshStack, lab, labConfig, labHosts, labVips, onHost, proxyPasswords, ROOT } from "./lab";

describe("lab proxy: HAProxy on the write and read VIPs", function () {
    const hosts = labHosts();
    const passwords = proxyPasswords();
    const { writeVip, readVip } = labVips(hosts);
    const figures: string[] = [];
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let outputs: Record<string, any> = {};

    const proxyConfig = (nodes: string[]) => JSON.stringify({ nodes, writeVip, readVip });
    const ask = askRedis;
    const app = (host: string) => ({ host, port: 6379, username: "app", password: passwords.appPassword });
    const admin = (host: string) => ({ host, port: 6379, username: "admin", password: passwords.adminPassword });
    const runIdOf = (opts: RedisOptions) => ask(opts, async (c) => /run_id:(\w+)/.exec(await c.info("server"))?.[1]);
    const roleOf = (opts: RedisOptions) => ask(opts, async (c) => String(((await c.call("ROLE")) as unknown[])[0]));
    /** The host of the master a majority of sentinels name (as the program asks), or undefined. */
    const sentinelMaster = async () => {
        const master = await discoverMaster(hosts.map((h) => ({ host: h.ip, port: 26379 })), "mymaster", passwords.sentinelPassword, { minVotes: majority(hosts.length) });
        return hosts.find((h) => h.ip === master?.host);
    };
    const holderOf = (vip: string, candidates: string[]) => candidates.filter((h) => onHost(h, `ip -o -4 addr show | grep -c ' ${vip}/' || true`).trim() !== "0");

    /**
     * Per host, how often its sentinel has given a failover up for want of a replica fresh enough
     * to promote (the log outlives stacks on the lab hosts: what counts is what it gained since).
     */
    const noGoodReplica = () => hosts.map((h) => Number(onHost(h.name, "cat /var/log/redis/redis-sentinel.log 2>/dev/null | grep -c failover-abort-no-good-slave || true").trim()));
    let noGoodReplicaBefore: number[] = [];

    before(async () => {
        noGoodReplicaBefore = noGoodReplica();
        stack = await freshStack("lab-proxy", {
            ...labConfig(hosts, passwords),
            "redis-ha:proxy": { value: proxyConfig([hosts[0].name, hosts[1].name]) },
        });
    });

    after(() => console.log(`    figures:\n${figures.map((f) => `      ${f}`).join("\n")}`));

    it("deploys the cluster with the proxy on two hosts and exports the VIP endpoints", async () => {
        const up = await stack.up();
        outputs = Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value]));
        assert.deepStrictEqual(outputs.write, { host: writeVip, port: 6379 });
        assert.deepStrictEqual(outputs.read, { host: readVip, port: 6379 });
        assert.deepStrictEqual(outputs.vipClient, { host: writeVip, port: 6379, username: "app", password: passwords.appPassword, connectTimeout: 200, socketTimeout: 1000 });
        assert.strictEqual(holderOf(writeVip, [hosts[0].name, hosts[1].name]).length, 1, "exactly one proxy must hold the VIPs");
        const again = await stack.up();
        assert.deepStrictEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], "a second up changed something");
    });

    it("routes the write VIP to the master and the read VIP to a replica", async () => {
        const master = (await sentinelMaster())!;
        assert.strictEqual(await runIdOf(app(writeVip)), await runIdOf(admin(master.ip)));
        assert.strictEqual(await roleOf(app(readVip)), "slave");
        await ask(app(writeVip), (c) => c.set("proxy:e2e", "through the write VIP"));
        await waitFor("the write reaching a replica", async () => (await ask(app(readVip), (c) => c.get("proxy:e2e"))) === "through the write VIP", 10);
    });

    it("serves the stats page only with the password", async () => {
        const url = outputs.proxyStats[0] as string;
        assert.strictEqual((await fetch(url)).status, 401);
        const wrong = await fetch(url, { headers: { Authorization: `Basic ${Buffer.from("admin:wrong").toString("base64")}` } });
        assert.strictEqual(wrong.status, 401);
        const ok = await fetch(`${url};csv`, { headers: { Authorization: `Basic ${Buffer.from(`admin:${passwords.statsPassword}`).toString("base64")}` } });
        assert.strictEqual(ok.status, 200);
        assert.match(await ok.text(), /^redis_write,FRONTEND/m);
    });

    it("serves the example consumer, which reads the stack outputs", () => {
        const out = execFileSync("npx", ["ts-node", "examples/consumer/index.ts"], { cwd: ROOT, input: JSON.stringify(outputs), encoding: "utf8", stdio: ["pipe", "pipe", "ignore"] });
        assert.deepStrictEqual(JSON.parse(out), {
            sentinelRole: "master",
            readThroughVip: "written through the sentinels",
            vipRole: "master",
            readThroughSentinels: "written through the VIP",
        });
    });

    it("follows a failover, and never sends a write-VIP connection to the restarted old master", async () => {
        const old = (await sentinelMaster())!;
        onHost(old.name, "systemctl stop redis-server");
        let now = old;
        const took = await waitFor("the write VIP reaching the new master", async () => {
            now = (await sentinelMaster()) ?? old;
            return now !== old && (await runIdOf(app(writeVip))) === (await runIdOf(admin(now.ip)));
        }, 60);
        figures.push(`write VIP on the new master ${took.toFixed(1)} s after redis-server stopped on ${old.name}`);
        // The old master boots as master until Sentinel demotes it: the VIP must not pick it. A
        // connection may reach only a node that a majority of sentinels names as master, asked
        // just before or just after it (a busy machine may see a second, real failover).
        const named = new Set<string>();
        const nameMaster = async () => {
            const m = await sentinelMaster();
            const id = m && (await runIdOf(admin(m.ip)));
            if (id) named.add(id);
        };
        await nameMaster();
        onHost(old.name, "systemctl start redis-server");
        const seen = new Map<string, number>();
        const wrong: string[] = [];
        const until = Date.now() + 20_000;
        while (Date.now() < until) {
            await nameMaster();
            const id = (await runIdOf(app(writeVip))) ?? "no answer";
            await nameMaster();
            seen.set(id, (seen.get(id) ?? 0) + 1);
            if (id !== "no answer" && !named.has(id)) wrong.push(id);
            await new Promise((r) => setTimeout(r, 50));
        }
        if (named.size > 1) figures.push(`(a second failover during the 20 s: the sentinels named ${named.size} masters)`);
        assert.deepStrictEqual(wrong, [], `write-VIP connections reached a node the sentinels did not name: ${JSON.stringify([...seen])}`);
        await waitFor(`${old.name} rejoining as a replica`, async () => (await roleOf(admin(old.ip))) === "slave", 60);
    });

    it("moves the VIPs when the proxy host holding them powers off", async () => {
        const proxies = [hosts[0].name, hosts[1].name];
        const [holder] = holderOf(writeVip, proxies);
        const other = proxies.find((p) => p !== holder)!;
        lab("poweroff", holder, "--hard");
        try {
            const took = await waitFor("the VIPs on the other proxy", async () => holderOf(writeVip, [other]).length === 1 && (await ask(app(writeVip), (c) => c.ping())) === "PONG", 60);
            figures.push(`VIPs served by ${other} ${took.toFixed(1)} s after ${holder} powered off`);
            await waitFor("the read VIP on a live replica", async () => (await roleOf(app(readVip))) === "slave", 10);
        } finally {
            lab("start", holder);
        }
        await waitFor(`${holder}'s HAProxy back`, async () => onHost(holder, "systemctl is-active haproxy keepalived || true").trim() === "active\nactive", 60);
        assert.deepStrictEqual(holderOf(writeVip, proxies), [other], "the VIPs must stay where they are (no preemption)");
    });

    it("survives the failover drill in every mode (figures below; loose bounds)", async function () {
        const master = async () => (await sentinelMaster())!;
        await waitFor("every node back as a replica", async () => (await Promise.all(hosts.map((h) => roleOf(admin(h.ip))))).filter((r) => r === "slave").length === 2, 90);
        const results = await runDrill(
            {
                hosts,
                sentinelClient: outputs.ioredis,
                vipClient: outputs.vipClient,
                masterName: "mymaster",
                adminPassword: passwords.adminPassword,
            },
            undefined,
            { windowSeconds: 20 },
        );
        figures.push(`failover drill (down-after 1 s):\n${formatTable(results).replace(/^/gm, "        ")}`);
        // Loose bounds. The write VIP is ours: writes through it must resume within the window.
        // The sentinel path measures ioredis itself, which now and then stays on a powered-off
        // master for longer: reported, not asserted.
        for (const r of results) {
            for (const p of r.paths) {
                assert.ok(p.attempted > 0 && p.acknowledged > 0, `${r.mode}/${p.path}: no write was acknowledged`);
                assert.ok(p.lost <= Math.ceil(p.acknowledged / 100), `${r.mode}/${p.path}: ${p.lost} acknowledged writes lost`);
            }
            const vip = r.paths.find((p) => p.path === "vip")!;
            assert.ok(vip.outageSeconds < 20, `${r.mode}: writes through the VIP did not resume within the window`);
        }
        const m = await master();
        const bench = benchVip({ host: m.ip, port: 6379 }, outputs.write, passwords.appPassword, 1, 10000);
        figures.push(`redis-benchmark via write VIP / direct to master: ${bench.map((b) => `${b.test} ${b.ratio}`).join(", ")}`);
        assert.ok(bench.every((b) => b.vip > 0 && b.direct > 0));
    });

    it("has had every failover above go through at its first try: no sentinel found no replica good enough", () => {
        const gained = noGoodReplica().map((n, i) => `${hosts[i].name} ${n - noGoodReplicaBefore[i]}`);
        assert.deepStrictEqual(gained, hosts.map((h) => `${h.name} 0`), "-failover-abort-no-good-slave in the sentinels' logs");
    });

    it("with one proxy host, keeps the VIPs as static addresses that are back after a reboot", async () => {
        const single = hosts[2].name;
        await stack.setConfig("redis-ha:proxy", { value: proxyConfig([single]) });
        await stack.up();
        assert.deepStrictEqual(holderOf(writeVip, hosts.map((h) => h.name)), [single]);
        assert.strictEqual(onHost(hosts[0].name, "systemctl is-active haproxy keepalived || true").trim(), "inactive\ninactive");
        onHost(single, "touch /run/before-reboot");
        try {
            onHost(single, "systemctl reboot");
        } catch {
            // the connection may drop as the host goes down
        }
        const took = await waitFor("the VIPs back after the reboot", async () => {
            try {
                return onHost(single, "test ! -e /run/before-reboot && echo rebooted || true").trim() === "rebooted" && (await ask(app(writeVip), (c) => c.ping())) === "PONG";
            } catch {
                return false;
            }
        }, 90);
        figures.push(`single proxy ${single}: write VIP served again ${took.toFixed(1)} s after a reboot`);
        assert.deepStrictEqual(holderOf(readVip, [single]), [single]);
    });

    it("destroys the proxy with the rest", async () => {
        await stack.destroy();
        for (const h of hosts) {
            assert.strictEqual(onHost(h.name, `ip -o -4 addr show | grep -cF -e ' ${writeVip}/' -e ' ${readVip}/' || true`).trim(), "0", `${h.name} still holds a VIP`);
        }
        await stack.workspace.removeStack(stack.name);
    });
});
