// Rolling operations on the lab, with real `pulumi up` runs on one stack with the VIP proxy: an
// explicit rolling restart; a restart-only setting and a package version change together, the
// run killed after the first node restarted and run again; every password rotated (old and new
// both accepted, then the old one refused); the SSH key rotated. Writers run through Sentinel
// (ioredis) and the write VIP during each; every acknowledged write is counted. Prints the table.
import * as assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import Redis, { type RedisOptions } from "ioredis";
import { sshRun } from "../../components/ssh";
import { writer } from "../../scripts/drill/drill";
import { newSshKey } from "../unit/fixtures";
import { askRedis, freshStack, labAgreement, labConfig, labHosts, labKey, newPasswords, onHost, ROOT, timed } from "./lab";

const SENTINEL = { downAfterMilliseconds: 2000, failoverTimeout: 10000, agreementTimeoutSeconds: 120 };
const ROTATING = ["adminPassword", "replicationPassword", "sentinelAuthPassword", "sentinelPassword", "appPassword", "healthCheckPassword"] as const;

describe("lab rolling operations: restart, upgrade, rotate", function () {
    const hosts = labHosts();
    const subnet = hosts[0].ip.replace(/\.\d+$/, "");
    const stamp = Date.now().toString(36);
    let passwords: Record<string, string> = { ...newPasswords(), healthCheckPassword: `hc-${stamp}-0123456789`, statsPassword: `st-${stamp}-0123456789` };
    const table: string[][] = [["operation", "pulumi up (s)", "path", "attempted", "acked", "failed", "lost", "longest pause (s)", "master before → after"]];
    const notes: string[] = [];
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let output = "";
    const onOutput = (s: string) => (output += s);
    let redisConfig: Record<string, unknown> = { maxmemory: "64mb" };

    const admin = () => ({ username: "admin", password: passwords.adminPassword });
    const master = async () => (await labAgreement(hosts, passwords.adminPassword, 120)).master.name;
    const up = async () => {
        output = "";
        const [result, secs] = await timed(() => stack.up({ onOutput }));
        assert.strictEqual(result.summary.result, "succeeded");
        return secs;
    };
    const restartsOn = (host: string, pattern: string) => Number(onHost(host, `grep -c -- '${pattern}' /var/lib/redis-ha/restarts.log 2>/dev/null || true`).trim());
    /** Per host: how many times redis-server and redis-sentinel restarted so far (restarts.log). */
    const restartCounts = () => Object.fromEntries(hosts.map((h) => [h.name, [restartsOn(h.name, "Z redis "), restartsOn(h.name, "Z sentinel ")]]));
    /** Each service of each host restarted exactly once since `before`. */
    const onceEach = (before: Record<string, number[]>, what: string) => {
        const now = restartCounts();
        for (const h of hosts) assert.deepStrictEqual([now[h.name][0] - before[h.name][0], now[h.name][1] - before[h.name][1]], [1, 1], `${h.name}: restarts of redis-server and redis-sentinel for ${what}`);
    };

    /**
     * Runs fn while two clients write every 20 ms (ioredis through Sentinel, and through the write
     * VIP), with the clients' options as the outputs give them before fn; adds a table row. The
     * clients fail fast, as in the drill, or with `patient` as an application's would: ioredis's
     * defaults (a command waits while the client reconnects).
     */
    const withWriters = async (operation: string, fn: () => Promise<number>, patient = false) => {
        const before = await master();
        const outs = await stack.outputs();
        const opts = patient
            ? { connectTimeout: 1000, retryStrategy: () => 100, lazyConnect: true }
            : { enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true };
        const sentinel = new Redis({ ...(outs.ioredis.value as RedisOptions), ...opts, failoverDetector: true, sentinelRetryStrategy: () => 100 });
        const vip = new Redis({ ...(outs.vipClient.value as RedisOptions), ...opts });
        for (const c of [sentinel, vip]) c.on("error", () => undefined);
        await Promise.all([sentinel.connect(), vip.connect()]).catch((e) => {
            sentinel.disconnect();
            vip.disconnect();
            throw e;
        });
        const writers = [writer("sentinel", sentinel, `rolling:${stamp}`, 20), writer("vip", vip, `rolling:${stamp}`, 20)];
        const t0 = Date.now();
        let secs = 0;
        try {
            secs = await fn();
        } finally {
            await Promise.all(writers.map((w) => w.stop()));
            sentinel.disconnect();
            vip.disconnect();
        }
        const t1 = Date.now();
        const after = await master();
        const reader = new Redis({ ...((await stack.outputs()).ioredis.value as RedisOptions), lazyConnect: true });
        reader.on("error", () => undefined);
        const results = [];
        try {
            await reader.connect();
            for (const w of writers) {
                const r = { ...w.result(t0, t1), lost: await w.lost(reader) };
                results.push(r);
                table.push([operation, secs.toFixed(1), r.path, String(r.attempted), String(r.acknowledged), String(r.failed), String(r.lost), r.outageSeconds.toFixed(1), `${before} → ${after}`]);
            }
        } finally {
            reader.disconnect();
        }
        for (const r of results) assert.strictEqual(r.lost, 0, `${operation}: acknowledged writes lost on the ${r.path} path`);
        return { results, before, after };
    };

    before(async () => {
        stack = await freshStack("lab-rolling", {
            ...labConfig(hosts, passwords as never),
            "redis-ha:sentinel": { value: JSON.stringify(SENTINEL) },
            "redis-ha:proxy": { value: JSON.stringify({ nodes: [hosts[0].name, hosts[1].name], writeVip: `${subnet}.100`, readVip: `${subnet}.101` }) },
            "redis-ha:healthCheckPassword": { value: passwords.healthCheckPassword, secret: true },
            "redis-ha:statsPassword": { value: passwords.statsPassword, secret: true },
        });
        await up();
    });

    after(async () => {
        const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
        console.log(table.map((row) => `    ${row.map((c, i) => c.padEnd(widths[i])).join("  ")}`).join("\n"));
        notes.forEach((n) => console.log(`    ${n}`));
        await stack?.destroy().catch(() => undefined);
        await stack?.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
    });

    it("restarts every node once when rollingRestart is raised: replicas first, the master after a handover", async () => {
        await stack.setConfig("redis-ha:rollingRestart", { value: "1" });
        const counts = restartCounts();
        const { results, before, after } = await withWriters("rolling restart", up);
        assert.notStrictEqual(after, before, "the master did not hand over its role");
        onceEach(counts, "the rolling restart");
        // (The engine prints each line twice: as progress, and again among the diagnostics.)
        const order = [...new Set([...output.matchAll(/rolling restart: (\S+): restarted/g)].map((m) => m[1]))];
        assert.strictEqual(order[order.length - 1], before, `the master restarts last: ${order.join(", ")}`);
        const held = /writes were held ([\d.]+) s/.exec(output);
        assert.ok(held, "the handover did not say how long it held writes");
        notes.push(`rolling restart: order ${order.join(", ")}; the handover held writes ${held[1]} s; failed writes ${results.map((r) => `${r.path} ${r.failed}`).join(", ")}`);
        const again = await stack.preview();
        assert.deepStrictEqual(Object.keys(again.changeSummary), ["same"], "a run after the rolling restart would change something");
    });

    it("restarts only the master's sentinel when only that needs it: no handover", async () => {
        const before = await master();
        const host = hosts.find((h) => h.name === before)!;
        onHost(host.name, "echo 0 >/var/lib/redis-ha/sentinel.generation"); // as if its last restart were still to come
        const counts = restartCounts();
        const urn = (await stack.exportStack()).deployment.resources.map((r: { urn: string }) => r.urn).find((u: string) => u.endsWith("::redis-ha-rolling-restart"));
        output = "";
        // Replacing the rolling restart resource makes it look again (as `pulumi up --replace <urn>` would).
        await withWriters("the master's sentinel alone", async () => (await timed(() => stack.up({ onOutput, replace: [urn] })))[1]);
        const now = restartCounts();
        for (const h of hosts) {
            assert.deepStrictEqual([now[h.name][0] - counts[h.name][0], now[h.name][1] - counts[h.name][1]], h === host ? [0, 1] : [0, 0], `${h.name}: restarts of redis-server and redis-sentinel`);
        }
        assert.strictEqual(await master(), before, "the master changed");
        assert.doesNotMatch(output, /planned failover/);
    });

    it("moves to a restart-only setting and another package version; killed after the first node, the re-run restarts each node once", async () => {
        const installed = (await stack.outputs()).nodes.value[hosts[0].name].packages["redis-server"] as string;
        const versions = onHost(hosts[0].name, "apt-cache madison redis-server | awk '{print $3}'").trim().split("\n");
        const other = versions.find((v) => v !== installed);
        assert.ok(other, `only ${installed} is available: no version to move to`);
        redisConfig = { ...redisConfig, databases: 32, packageVersion: other };
        await stack.setConfig("redis-ha:redis", { value: JSON.stringify(redisConfig) });
        const counts = restartCounts();
        // restarts.log outlives the stacks on the lab hosts: what counts is what it gained since.
        const restartedNow = () => {
            const now = restartCounts();
            return hosts.filter((h) => now[h.name][0] > counts[h.name][0]).map((h) => h.name);
        };
        const { before, after } = await withWriters(`packages ${installed} → ${other} and databases 32, interrupted`, async () => {
            // The first run is killed once one node's Redis restarted, as a dead laptop would.
            const killed = await killedAfter(() => restartedNow().length > 0);
            notes.push(`interrupted run: killed after ${killed.toFixed(1)} s, once ${restartedNow().join(", ")} had restarted`);
            const [, secs] = await timed(up);
            return killed + secs;
        });
        onceEach(counts, "the new version and setting, across the killed run and the re-run");
        for (const h of hosts) {
            assert.strictEqual(onHost(h.name, "dpkg-query -W -f='${Version}' redis-server").trim(), other);
            const databases = await askRedis({ host: h.ip, port: 6379, ...admin() }, (c) => c.call("CONFIG", "GET", "databases") as Promise<string[]>);
            assert.strictEqual(databases?.[1], "32", `${h.name}: databases`);
        }
        // The outputs report what runs after the upgrade, not what the packages step saw before it.
        const nodes = (await stack.outputs()).nodes.value;
        for (const h of hosts) {
            const running = /^redis_version:(\S+)/m.exec((await askRedis({ host: h.ip, port: 6379, ...admin() }, (c) => c.info("server"))) ?? "")?.[1];
            assert.deepStrictEqual([nodes[h.name].packages["redis-server"], nodes[h.name].serverVersion], [other, running], `${h.name}: packages and serverVersion in the outputs`);
        }
        notes.push(`version change: ${before} → ${after}; every node runs ${other}, databases 32`);
        // The pin is held: an `apt upgrade` on the server leaves it.
        for (const h of hosts) assert.strictEqual(onHost(h.name, "apt-mark showhold | sort | paste -sd' '").trim(), "redis-sentinel redis-server redis-tools", `${h.name}: held packages`);
    });

    it("stops at the first node with apt's reason when apt cannot install the pinned version; no node restarts", async () => {
        const good = redisConfig;
        redisConfig = { ...redisConfig, packageVersion: "5:7.0.99-1" };
        await stack.setConfig("redis-ha:redis", { value: JSON.stringify(redisConfig) });
        const counts = restartCounts();
        output = "";
        await assert.rejects(stack.up({ onOutput }), /Version '5:7\.0\.99-1' for 'redis-server' was not found/);
        assert.deepStrictEqual(restartCounts(), counts, "a node restarted for a version apt cannot install");
        for (const h of hosts) assert.notStrictEqual(onHost(h.name, "dpkg-query -W -f='${Version}' redis-server").trim(), "5:7.0.99-1");
        redisConfig = good;
        await stack.setConfig("redis-ha:redis", { value: JSON.stringify(redisConfig) });
        await up();
    });

    /** Where each password logs in: its users on Redis (6379) and on Sentinel (26379). */
    const LOGINS: Record<(typeof ROTATING)[number], [string, number][]> = {
        adminPassword: [["admin", 6379], ["admin", 26379]],
        replicationPassword: [["replication", 6379]],
        sentinelAuthPassword: [["sentinel", 6379], ["sentinel", 26379]],
        sentinelPassword: [["discovery", 26379]],
        appPassword: [["app", 6379]],
        healthCheckPassword: [["healthcheck", 6379]],
    };
    /** Which of old and new passwords of `key` each user takes, on every host. */
    const takes = async (key: (typeof ROTATING)[number], old: string, next: string) => {
        const seen: string[] = [];
        for (const h of hosts) {
            for (const [user, port] of LOGINS[key]) {
                const ping = (password: string) => askRedis({ host: h.ip, port, username: user, password }, (c) => c.ping()).then((r) => r === "PONG");
                seen.push(`${h.name}:${port} ${user} old=${await ping(old)} new=${await ping(next)}`);
            }
        }
        return seen;
    };
    const expectTakes = (seen: string[], old: boolean) => seen.forEach((s) => assert.match(s, new RegExp(`old=${old} new=true$`), s));

    /**
     * The README's two runs for `keys`: each old password under previousPasswords and the new one
     * in its key, `pulumi up` (writers keep the old credentials: the applications have not moved),
     * then the previousPasswords entries removed, `pulumi up` (writers with the new outputs).
     * Checks that both passwords work in between, the old ones are refused after (the attacker's
     * view), replication stays linked, and no request failed.
     */
    const rotate = async (keys: (typeof ROTATING)[number][], label: string) => {
        const old = { ...passwords };
        const next = Object.fromEntries(keys.map((k) => [k, `${k}-new-${Date.now().toString(36)}`])) as Record<string, string>;
        for (const k of keys) {
            await stack.setConfig(`redis-ha:previousPasswords.${k}`, { value: old[k], secret: true }, true);
            await stack.setConfig(`redis-ha:${k}`, { value: next[k], secret: true });
        }
        const added = await withWriters(`${label}: new added`, up, true);
        passwords = { ...passwords, ...next };
        const outs = await stack.outputs();
        assert.strictEqual((outs.ioredis.value as RedisOptions).password, passwords.appPassword);
        assert.strictEqual((outs.ioredis.value as { sentinelPassword: string }).sentinelPassword, passwords.sentinelPassword);
        for (const k of keys) expectTakes(await takes(k, old[k], next[k]), true);
        await stack.removeConfig("redis-ha:previousPasswords");
        const removed = await withWriters(`${label}: old removed`, up, true);
        for (const k of keys) expectTakes(await takes(k, old[k], next[k]), false);
        for (const r of [...added.results, ...removed.results]) assert.strictEqual(r.failed, 0, `${label}: a ${r.path} request failed during the rotation`);
        for (const h of hosts) {
            const link = await askRedis({ host: h.ip, port: 6379, ...admin() }, (c) => c.info("replication"));
            assert.ok(/role:master/.test(link!) || /master_link_status:up/.test(link!), `${h.name}: replication link down after rotating ${label}`);
        }
    };

    for (const key of ROTATING) {
        it(`rotates ${key}: old and new both work, the outputs switch, no request fails; then the old one is refused`, () => rotate([key], key));
    }

    it("rotates every password at once, and a run after it changes nothing", async () => {
        await rotate([...ROTATING], "every password at once");
        const again = await stack.preview();
        assert.deepStrictEqual(Object.keys(again.changeSummary), ["same"], "a run after the rotation would change something");
    });

    it("rotates the SSH key: the new one authorised and used, then the old one taken off", async () => {
        const fresh = newSshKey();
        const oldKey = labKey();
        const login = (ip: string, key: string) => sshRun({ host: ip, user: "root", privateKey: key, dialTimeoutSeconds: 5 }, "true", {}, "").then(() => true, () => false);
        await stack.setConfig("redis-ha:previousSshPrivateKey", { value: oldKey, secret: true });
        await stack.setConfig("redis-ha:sshPrivateKey", { value: fresh, secret: true });
        try {
            await withWriters("SSH key: new authorised", up);
            for (const h of hosts) assert.deepStrictEqual([await login(h.ip, fresh), await login(h.ip, oldKey)], [true, true], `${h.name}: new and old key`);
            await stack.removeConfig("redis-ha:previousSshPrivateKey");
            await withWriters("SSH key: old removed", up);
            for (const h of hosts) assert.deepStrictEqual([await login(h.ip, fresh), await login(h.ip, oldKey)], [true, false], `${h.name}: only the new key`);
        } finally {
            // The lab's own tools log in with the lab key: give it back to every host.
            const pub = execFileSync("ssh-keygen", ["-y", "-f", execFileSync("bash", [path.join(ROOT, "lab", "lab.sh"), "key"], { encoding: "utf8" }).trim()], { encoding: "utf8" }).trim();
            for (const h of hosts) await sshRun({ host: h.ip, user: "root", privateKey: fresh, dialTimeoutSeconds: 5 }, `grep -qF '${pub}' /root/.ssh/authorized_keys || echo '${pub}' >>/root/.ssh/authorized_keys`, {}, "").catch(() => undefined);
        }
        const again = await stack.preview();
        assert.deepStrictEqual(Object.keys(again.changeSummary), ["same"], "a run after the key rotation would change something");
    });

    /**
     * Starts `pulumi up` on the stack (the real CLI, as an operator would) and kills it and every
     * process under it with SIGKILL as soon as `cond` holds (a machine that dies); clears the lock the dead run left in the
     * file backend (README "Rolling operations"). Returns the seconds it ran.
     */
    async function killedAfter(cond: () => boolean): Promise<number> {
        const started = Date.now();
        const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--stack", stack.name, "--non-interactive"], { cwd: ROOT, detached: true, stdio: "ignore" });
        const exited = new Promise((r) => child.on("exit", r));
        for (;;) {
            await new Promise((r) => setTimeout(r, 500));
            if (cond()) break;
            if (child.exitCode !== null) throw new Error("the run ended before it could be interrupted");
            if (Date.now() - started > 600_000) throw new Error("no node restarted within 600 s");
        }
        // The whole tree: the engine starts its plugins (the dynamic providers) in process groups of their own.
        const tree = [child.pid!];
        const parents = execFileSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" }).trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
        for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
        for (const pid of tree) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // gone already
            }
        }
        await exited;
        const backend = (process.env.PULUMI_BACKEND_URL ?? "").replace(/^file:\/\//, "");
        fs.rmSync(path.join(backend, ".pulumi", "locks", "organization", "redis-ha", stack.name), { recursive: true, force: true });
        return (Date.now() - started) / 1000;
    }
});
