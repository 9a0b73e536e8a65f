// Choosing the master of a re-created cluster from the nodes' data surveys: every rule of
// chooseMaster, and assets/data-survey.sh on data that real redis-servers wrote on loopback (a
// lone master; a master and a replica shut down before it). Those are skipped without
// redis-server and redis-check-rdb.
import * as assert from "assert";
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { chooseMaster, type DataSurvey } from "../../components/master-choice";
import { failFastClient } from "../../components/redis-client";
import { freePort, onPath } from "./loopback";

const ASSETS = path.join(__dirname, "..", "..", "assets");
const EMPTY: DataSurvey = { hasData: false, keys: null, replId: null, replOffset: null, savedAt: null, aofBytes: 0, newestWrite: null };
const ID = "262f91768beb16bc2c33ec450591429a1c7306fb";
const data = (replOffset: number | null, replId: string | null = ID): DataSurvey => ({
    hasData: true,
    keys: 150,
    replId: replOffset === null ? null : replId,
    replOffset,
    savedAt: 1795444644,
    aofBytes: 4757,
    newestWrite: 1795444644,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nodes = (...surveys: DataSurvey[]) => surveys.map((survey, i) => ({ name: `rha${i + 1}`, survey }));

describe("chooseMaster", () => {
    it("takes the node redis-ha:recoverFrom names, whatever the data", () => {
        const choice = chooseMaster(nodes(data(9000), data(null), EMPTY), "rha1", "rha3");
        assert.strictEqual(choice.master, "rha3");
        assert.match(choice.why, /recoverFrom names rha3/);
        assert.throws(() => chooseMaster(nodes(EMPTY), "rha1", "rha9"), /recoverFrom is "rha9", which is not a node \(rha1\)/);
    });

    it("takes the initial master when no node holds data", () => {
        assert.deepStrictEqual(chooseMaster(nodes(EMPTY, EMPTY, EMPTY), "rha2"), { master: "rha2", why: "no node holds data: rha2, the initial master" });
    });

    it("takes the only node holding data, even with no offset and not the initial master", () => {
        assert.deepStrictEqual(chooseMaster(nodes(EMPTY, EMPTY, data(null)), "rha1"), { master: "rha3", why: "rha3 is the only node holding data (150 keys)" });
    });

    it("takes the node with the highest offset", () => {
        const choice = chooseMaster(nodes(data(3107), data(4757), EMPTY), "rha1");
        assert.deepStrictEqual(choice, { master: "rha2", why: "rha2 holds the newest data (repl offset 4757; rha1: 3107)" });
        // Offsets continue across failovers: another replication ID is no reason to refuse.
        assert.strictEqual(chooseMaster(nodes(data(3107, "a".repeat(40)), data(4757)), "rha1").master, "rha2");
    });

    it("on a tie in the same stream, takes the initial master if tied, else the first tied", () => {
        const three = nodes(data(3107), data(4757), data(4757));
        assert.deepStrictEqual(chooseMaster(three, "rha3"), {
            master: "rha3",
            why: "rha2 and rha3 hold the same newest data (repl offset 4757; rha1: 3107): rha3, the initial master",
        });
        assert.strictEqual(chooseMaster(three, "rha1").master, "rha2");
    });

    it("refuses a tie between different streams, and any node with data but no offset", () => {
        assert.throws(() => chooseMaster(nodes(data(4757), data(4757, "b".repeat(40))), "rha1"), /recoverFrom/);
        assert.throws(() => chooseMaster(nodes(data(4757), data(null), EMPTY), "rha1"), /recoverFrom/);
    });

    it("says in the refusal what each node holds and how to proceed", () => {
        const unknown = { ...data(null), keys: null, newestWrite: null };
        const err = (() => {
            try {
                chooseMaster(nodes(data(4757), EMPTY, unknown), "rha1");
            } catch (e) {
                return (e as Error).message;
            }
            assert.fail("chooseMaster must refuse");
        })();
        assert.strictEqual(
            err,
            [
                "No sentinel answers and several nodes hold Redis data, but their replication offsets do not tell which is newest:",
                "  rha1: 150 keys, repl offset 4757, newest write 2026-11-23T14:37:24.000Z",
                "  rha3: unknown keys, repl offset unknown, newest write unknown",
                "Choose the node whose data to keep (one of rha1, rha3): pulumi config set redis-ha:recoverFrom <node>, then pulumi up again.",
                "The other nodes' data is then overwritten by a full resync from it.",
            ].join("\n"),
        );
    });
});

/** assets/data-survey.sh as RemoteCommand runs it (lib/common.sh in front), on DATA_DIR=dir. */
function survey(dir: string): DataSurvey {
    const script = ["lib/common.sh", "data-survey.sh"].map((f) => fs.readFileSync(path.join(ASSETS, f), "utf8")).join("\n");
    const run = spawnSync("bash", ["-s"], { input: script, env: { ...process.env, DATA_DIR: dir }, encoding: "utf8" });
    assert.strictEqual(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.strictEqual(lines.length, 1, `one JSON line expected: ${run.stdout}`);
    console.log(`      survey of ${path.basename(dir)}: ${lines[0]}`);
    return JSON.parse(lines[0]) as DataSurvey;
}

describe("data-survey.sh on data real redis-servers wrote (skipped without redis-server and redis-check-rdb)", function () {
    this.timeout(30000);
    let root = "";
    const children: ChildProcess[] = [];

    /** A redis-server on a free loopback port with data in root/<name>, AOF and save points on. */
    async function redis(name: string, ...args: string[]) {
        const dir = path.join(root, name);
        fs.mkdirSync(dir);
        const port = await freePort();
        const child = spawn(
            "redis-server",
            ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "3600 1", "--repl-diskless-sync-delay", "0", ...args],
            { stdio: "ignore" },
        );
        children.push(child);
        const client = failFastClient({ port, host: "127.0.0.1" });
        for (let i = 0; ; i++) {
            if ((await client.connect().then(() => client.ping(), () => "")) === "PONG") break;
            if (i > 100) throw new Error("redis-server does not answer");
            await sleep(50);
        }
        const write = async (prefix: string, n: number) => {
            const batch = client.pipeline();
            for (let i = 0; i < n; i++) batch.set(`${prefix}${i}`, `value ${i}`);
            await batch.exec();
        };
        const field = async (section: string, name: string) => Number((await client.info(section)).match(new RegExp(`^${name}:(\\d+)`, "m"))?.[1]);
        // SHUTDOWN writes dump.rdb (save points are set) and ends the server: no answer.
        const shutdown = async () => {
            const exited = new Promise((r) => child.once("exit", r));
            await client.call("SHUTDOWN").catch(() => undefined);
            await exited;
            client.disconnect();
        };
        return { dir, port, child, client, write, field, shutdown };
    }

    before(function () {
        if (!onPath("redis-server") || !onPath("redis-check-rdb")) return this.skip();
        root = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-survey-"));
    });

    after(async () => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
        await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    it("finds no data in an empty or missing directory", () => {
        fs.mkdirSync(path.join(root, "empty"));
        assert.deepStrictEqual(survey(path.join(root, "empty")), EMPTY);
        assert.deepStrictEqual(survey(path.join(root, "missing")), EMPTY);
    });

    it("counts the keys a lone master saved on SHUTDOWN (no replica ever: no offset)", async () => {
        const lone = await redis("lone");
        await lone.write("k", 150);
        await lone.shutdown();
        const found = survey(lone.dir);
        assert.strictEqual(found.hasData, true);
        assert.strictEqual(found.keys, 150);
        assert.ok(found.aofBytes > 0 && found.newestWrite! > 0 && found.savedAt! > 0, JSON.stringify(found));
        assert.strictEqual(chooseMaster([{ name: "a", survey: EMPTY }, { name: "b", survey: found }], "a").master, "b");
    });

    /**
     * A master and its replica, which has applied the master's 100 keys and rewritten its AOF
     * after the full sync (until then it refuses SHUTDOWN: "Writing initial AOF, can't exit").
     */
    async function pair(name: string) {
        const master = await redis(`${name}-master`);
        const replica = await redis(`${name}-replica`, "--replicaof", "127.0.0.1", String(master.port));
        await master.write("k", 100);
        const settled = async () =>
            (await replica.field("replication", "slave_repl_offset")) === (await master.field("replication", "master_repl_offset")) &&
            (await replica.field("persistence", "aof_rewrite_in_progress")) === 0 &&
            (await replica.field("persistence", "aof_rewrite_scheduled")) === 0;
        for (let i = 0; !(await settled()); i++) {
            if (i > 200) throw new Error("the replica does not catch up");
            await sleep(50);
        }
        return { master, replica };
    }

    it("picks the master over a replica shut down before it", async () => {
        const { master, replica } = await pair("shutdown");
        await replica.shutdown();
        await master.write("j", 50);
        await master.shutdown();

        const [m, r] = [survey(master.dir), survey(replica.dir)];
        assert.deepStrictEqual([m.keys, r.keys], [150, 100]);
        assert.strictEqual(m.replId, r.replId);
        assert.ok(m.replOffset! > r.replOffset!, `offsets: master ${m.replOffset}, replica ${r.replOffset}`);
        // The replica is the configured initial master: the data decides.
        const choice = chooseMaster([{ name: "replica", survey: r }, { name: "master", survey: m }], "replica");
        assert.strictEqual(choice.master, "master");
        assert.match(choice.why, /^master holds the newest data \(repl offset \d+; replica: \d+\)$/);
    });

    it("does not trust a dump.rdb older than the AOF (a replica killed after its full sync)", async () => {
        const { master, replica } = await pair("crash");
        const exited = new Promise((r) => replica.child.once("exit", r));
        replica.child.kill("SIGKILL");
        await exited;
        replica.client.disconnect();
        await master.shutdown();
        assert.ok(fs.existsSync(path.join(replica.dir, "dump.rdb")), "the replica keeps the RDB of its full sync");
        const r = survey(replica.dir);
        assert.deepStrictEqual([r.hasData, r.keys, r.replOffset], [true, null, null]);
        assert.ok(r.aofBytes > 0);
        assert.throws(() => chooseMaster([{ name: "replica", survey: r }, { name: "master", survey: survey(master.dir) }], "master"), /recoverFrom/);
    });
});
