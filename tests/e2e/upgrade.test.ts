// Stacks deployed by earlier code upgrade in place with `pulumi up`, unpacked from git history:
//   - from the release before Sentinel's ACL users (RELEASE): Sentinel gets its users, the app
//     user loses Sentinel's channels, hosts get pinned keys; nothing restarts or fails over, and
//     writers through the sentinels (with the old outputs) and the write VIP lose nothing;
//   - from the commit before RedisHaCluster (BEFORE_COMPONENT): every resource moves under the
//     component (aliases): nothing replaced, no script runs.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import Redis, { type RedisOptions } from "ioredis";
import { askRedis, exportState, freshStack, labConfig, labHosts, newPasswords, ROOT, waitFor } from "./lab";

/** The last release before Sentinel's ACL users (password-only Sentinel, `app` with `&*`). */
const RELEASE = "a96b3c653732847a791cc7fa22193086ce18d3df";
/** The last commit before RedisHaCluster: every resource at the top level of the stack. */
const BEFORE_COMPONENT = "5b4eaa64d359647b6ea85d8e64cecda0b98eb44c";

/** The project at `commit`, unpacked into a temporary directory that uses our node_modules; undefined without git history. */
function unpack(commit: string): string | undefined {
    try {
        execFileSync("git", ["cat-file", "-e", `${commit}^{commit}`], { cwd: ROOT, stdio: "ignore" });
    } catch {
        return undefined; // a shallow clone has no history to unpack it from
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-release-"));
    execFileSync("bash", ["-c", `git archive ${commit} | tar -x -C '${dir}'`], { cwd: ROOT });
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    return dir;
}

/** Selects the stack from another directory of the project, its Pulumi.<stack>.yaml copied there. */
async function moveStack(name: string, from: string, to: string): Promise<Stack> {
    fs.copyFileSync(path.join(from, `Pulumi.${name}.yaml`), path.join(to, `Pulumi.${name}.yaml`));
    return Stack.select(name, await LocalWorkspace.create({ workDir: to }));
}

/** Writes through a client every 20 ms; returns a stopper that reports what was acknowledged. */
function writer(prefix: string, opts: RedisOptions) {
    const client = new Redis({ ...opts, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000, retryStrategy: () => 100 });
    client.on("error", () => undefined);
    const acked: number[] = [];
    let attempted = 0;
    let stop = false;
    const loop = (async () => {
        while (!stop) {
            const i = attempted++;
            await client.set(`${prefix}:${i}`, String(i)).then(() => acked.push(i), () => undefined);
            await new Promise((r) => setTimeout(r, 20));
        }
    })();
    return async () => {
        stop = true;
        await loop;
        client.disconnect();
        return { attempted, acked };
    };
}

describe("lab upgrade: a stack of the earlier release migrates in place", function () {
    const hosts = labHosts();
    const passwords = { ...newPasswords(), healthCheckPassword: "hc-upgrade-0123456789abc", statsPassword: "st-upgrade-0123456789abc" };
    const subnet = hosts[0].ip.replace(/\.\d+$/, "");
    const figures: string[] = [];
    let releaseDir = "";
    let stack: Stack;

    const admin = (ip: string) => ({ host: ip, port: 6379, username: "admin", password: passwords.adminPassword });
    const runIds = () => Promise.all(hosts.map((h) => askRedis(admin(h.ip), async (c) => /run_id:(\w+)/.exec(await c.info("server"))?.[1])));
    const sentinelPids = () => hosts.map((h) => execFileSync("bash", [path.join(ROOT, "lab", "lab.sh"), "ssh", h.name, "systemctl show -p MainPID --value redis-sentinel"], { encoding: "utf8" }).trim());
    /** The master Sentinel names: asked as admin, or before the upgrade with Sentinel's one password. */
    const master = async () => {
        const ask = (auth: { username?: string; password: string }) =>
            askRedis({ host: hosts[0].ip, port: 26379, ...auth }, async (c) => ((await c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")) as string[])[0]);
        return (await ask({ username: "admin", password: passwords.adminPassword })) ?? (await ask({ password: passwords.sentinelPassword }));
    };

    before(async function () {
        const dir = unpack(RELEASE);
        if (!dir) return this.skip();
        releaseDir = dir;
        // The stack starts in the release's directory (its Pulumi.<stack>.yaml lives there).
        const current = await freshStack("lab-upgrade", {
            ...labConfig(hosts, passwords),
            "redis-ha:proxy": { value: JSON.stringify({ nodes: [hosts[0].name, hosts[1].name], writeVip: `${subnet}.100`, readVip: `${subnet}.101` }) },
        });
        stack = await moveStack(current.name, ROOT, releaseDir);
    });

    after(() => {
        if (releaseDir) fs.rmSync(releaseDir, { recursive: true, force: true });
        console.log(`    figures:\n${figures.map((f) => `      ${f}`).join("\n")}`);
    });

    it("deploys with the earlier release", async () => {
        const up = await stack.up();
        assert.strictEqual(up.summary.result, "succeeded");
        assert.strictEqual(up.outputs.ioredis.value.sentinelUsername, undefined, "this is not the earlier release");
    });

    it("upgrades with legacy client auth: no restart, no failover, no write lost, old clients still discover", async () => {
        const old = await stack.outputs();
        const oldClient = old.ioredis.value; // no sentinelUsername: Sentinel's default user
        const [ids, pids, m] = [await runIds(), sentinelPids(), await master()];
        const stops = [writer("up1:sentinel", { ...oldClient }), writer("up1:vip", { ...old.vipClient.value })];
        // The same stack, now driven by this code: the file with its config moves along.
        stack = await moveStack(stack.name, releaseDir, ROOT);
        await stack.setConfig("redis-ha:sentinel", { value: JSON.stringify({ downAfterMilliseconds: 1000, failoverTimeout: 10000, agreementTimeoutSeconds: 120, legacyClientAuth: true }) });
        const started = Date.now();
        const up = await stack.up().catch(async (e) => {
            await Promise.all(stops.map((s) => s())); // no writer left running after a failure
            throw e;
        });
        figures.push(`upgrade (legacy client auth on): ${((Date.now() - started) / 1000).toFixed(1)} s, ${JSON.stringify(up.summary.resourceChanges)}`);
        await new Promise((r) => setTimeout(r, 1000));
        const results = await Promise.all(stops.map((s) => s()));
        assert.deepStrictEqual(await runIds(), ids, "a Redis restarted");
        assert.deepStrictEqual(sentinelPids(), pids, "a Sentinel restarted");
        assert.strictEqual(await master(), m, "the master changed");
        for (const [i, r] of results.entries()) {
            const prefix = i === 0 ? "up1:sentinel" : "up1:vip";
            let lost = 0;
            for (const n of r.acked) if ((await askRedis(admin(m!), (c) => c.get(`${prefix}:${n}`))) !== String(n)) lost++;
            figures.push(`${prefix}: attempted ${r.attempted}, acknowledged ${r.acked.length}, lost ${lost}`);
            assert.strictEqual(lost, 0, `${prefix}: acknowledged writes lost`);
            assert.ok(r.acked.length > 0);
        }
        // Old clients (password only) can still discover, but no longer administer Sentinel.
        const legacy = { host: hosts[1].ip, port: 26379, password: passwords.sentinelPassword };
        assert.deepStrictEqual(await askRedis(legacy, (c) => c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")), [m, "6379"]);
        assert.match(String(await askRedis(legacy, (c) => c.call("SENTINEL", "SET", "mymaster", "quorum", "1").then(() => "allowed", (e: Error) => e.message))), /NOPERM/);
        const app = { host: m!, port: 6379, username: "app", password: passwords.appPassword };
        assert.match(String(await askRedis(app, (c) => c.publish("__sentinel__:hello", "x").then(() => "allowed", (e: Error) => e.message))), /NOPERM/);
    });

    it("turns legacy client auth off: the default user is off, the new outputs work, still no restart", async () => {
        const ids = await runIds();
        await stack.setConfig("redis-ha:sentinel", { value: JSON.stringify({ downAfterMilliseconds: 1000, failoverTimeout: 10000, agreementTimeoutSeconds: 120 }) });
        const up = await stack.up();
        assert.strictEqual(up.summary.result, "succeeded");
        assert.deepStrictEqual(await runIds(), ids, "a Redis restarted");
        const legacy = { host: hosts[1].ip, port: 26379, password: passwords.sentinelPassword };
        assert.strictEqual(await askRedis(legacy, (c) => c.ping()), undefined, "the default user still opens Sentinel");
        const redis = new Redis({ ...up.outputs.ioredis.value, lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
            await redis.connect();
            assert.strictEqual(await redis.set("upgrade:new-outputs", "ok"), "OK");
        } finally {
            redis.disconnect();
        }
        const again = await stack.up();
        assert.deepStrictEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], "a second up changed something");
        await waitFor("every sentinel naming the master", async () => (await master()) !== undefined, 10);
    });

    it("destroys the upgraded stack", async () => {
        await stack.destroy();
        await stack.workspace.removeStack(stack.name);
        fs.rmSync(path.join(ROOT, "Pulumi.lab-upgrade.yaml"), { force: true });
    });
});

describe("lab upgrade: a stack from before RedisHaCluster moves under it in place", function () {
    const hosts = labHosts();
    const passwords = newPasswords();
    let dir = "";
    let stack: Stack;
    const runIds = () => Promise.all(hosts.map((h) => askRedis({ host: h.ip, port: 6379, username: "admin", password: passwords.adminPassword }, async (c) => /run_id:(\w+)/.exec(await c.info("server"))?.[1])));
    /** Each command's run id (a new one whenever its script ran), by resource name. */
    const commandRuns = () =>
        Object.fromEntries(
            exportState(stack.name)
                .resources.filter((r) => r.outputs?.runId !== undefined)
                .map((r) => [r.urn.split("::").pop()!, r.outputs!.runId]),
        );

    before(async function () {
        const unpacked = unpack(BEFORE_COMPONENT);
        if (!unpacked) return this.skip();
        dir = unpacked;
        const current = await freshStack("lab-reparent", labConfig(hosts, passwords));
        stack = await moveStack(current.name, ROOT, dir);
    });

    after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

    it("deploys with the code from before the component, then upgrades: nothing replaced, no restart", async () => {
        assert.strictEqual((await stack.up()).summary.result, "succeeded");
        const [ids, runs] = [await runIds(), commandRuns()];
        stack = await moveStack(stack.name, dir, ROOT);
        const up = await stack.up();
        const changes = up.summary.resourceChanges ?? {};
        console.log(`      upgrade to RedisHaCluster: ${JSON.stringify(changes)}`);
        assert.deepStrictEqual(Object.keys(changes).filter((op) => !["same", "update", "create"].includes(op)), [], "something was replaced or deleted");
        // New: the component, the master election, the membership, the rolling restart (which finds
        // nothing to restart) and per node its SSH key step (the key is authorised already).
        // lib/common.sh, which every script carries, changed since, so the (idempotent) commands
        // run once more, in place: nothing restarts (run ids below).
        assert.strictEqual(changes.create, 4 + hosts.length, "more is new than the component, the election, the membership, the rolling restart and the SSH key steps");
        const ran = Object.entries(commandRuns()).filter(([name, id]) => name in runs && runs[name] !== id).length;
        console.log(`      commands that ran again: ${ran} of ${Object.keys(runs).length}`);
        assert.deepStrictEqual(await runIds(), ids, "a Redis restarted");
        assert.ok(exportState(stack.name).resources.some((r) => r.urn.includes("redis-ha:index:Cluster$redis-ha:index:ServerPrep")), "the nodes are not under the cluster");
        const again = await stack.up();
        assert.deepStrictEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], "a second up changed something");
    });

    it("destroys the moved stack", async () => {
        await stack.destroy();
        await stack.workspace.removeStack(stack.name);
        fs.rmSync(path.join(ROOT, "Pulumi.lab-reparent.yaml"), { force: true });
    });
});
