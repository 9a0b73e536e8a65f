// The rendered haproxy.cfg in a real HAProxy on loopback, as child processes of the test (no
// service, no root needed, nothing left behind): a real redis-server as node a, whose ACL user
// `healthcheck` has a password of every printable character; three fake sentinels in this
// process (127.0.0.1-3), which check the `discovery` login byte for byte and name the master
// the test tells them to; the VIPs on 127.0.0.100-101. Proves that the escaped passwords reach
// Redis and Sentinel intact, that the Lua guard cuts a session on the write VIP when the
// sentinels stop naming its node although it still says master, and that the write VIP sends to
// no node while two qualify (a second redis-server as node b, node a's votes frozen on the admin
// socket as a check that has not run yet would leave them). Skipped without Linux, haproxy or
// redis-server.
import * as assert from "assert";
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { parseStackConfig } from "../../components/config";
import { GUARD_LUA_PATH, renderHaproxyConfig } from "../../components/proxy-config";
import { proxiedConfig } from "./fixtures";
import { freePort, onPath } from "./loopback";

const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const secrets = { healthCheck: `hc${PUNCTUATION}Aa0`, sentinel: `sp${PUNCTUATION}Bb1`, stats: `st${PUNCTUATION}Cc2` };
const CHECK_MS = 200;
const WRITE_VIP = "127.0.0.100";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("");

/** Complete RESP commands at the start of `buf`, and what is left of it. */
function readCommands(buf: Buffer): [string[][], Buffer] {
    const commands: string[][] = [];
    let at = 0;
    for (;;) {
        const head = /^\*(\d+)\r\n/.exec(buf.subarray(at, at + 16).toString("latin1"));
        if (!head) return [commands, buf.subarray(at)];
        let i = at + head[0].length;
        const args: string[] = [];
        for (let k = 0; k < Number(head[1]); k++) {
            const len = /^\$(\d+)\r\n/.exec(buf.subarray(i, i + 16).toString("latin1"));
            if (!len || buf.length < i + len[0].length + Number(len[1]) + 2) return [commands, buf.subarray(at)];
            i += len[0].length;
            args.push(buf.subarray(i, i + Number(len[1])).toString("latin1"));
            i += Number(len[1]) + 2;
        }
        commands.push(args);
        at = i;
    }
}

/** Sends one command to 127.0.0.1 (or host:port), returns the first chunk of the answer. */
function ask(port: number | [string, number], ...command: string[]): Promise<string> {
    const [host, p] = typeof port === "number" ? ["127.0.0.1", port] : port;
    return new Promise((resolve, reject) => {
        const s = net.connect(p, host, () => s.write(resp(...command)));
        s.once("data", (d) => {
            s.destroy();
            resolve(d.toString());
        });
        s.once("error", reject);
        s.once("close", () => resolve("")); // closed without an answer (after one, a no-op)
    });
}

/** One command on HAProxy's admin socket; its whole answer. */
function adminSocket(socket: string, command: string): Promise<string> {
    return new Promise((resolve, reject) => {
        let out = "";
        const s = net.connect(socket, () => s.write(`${command}\n`));
        s.on("data", (d) => (out += d));
        s.on("error", reject);
        s.on("end", () => resolve(out));
    });
}

/** `show stat` on HAProxy's admin socket: "backend/server" → [status, last check]. */
async function showStat(socket: string): Promise<Map<string, [string, string]>> {
    const [header, ...rows] = (await adminSocket(socket, "show stat")).trim().split("\n");
    const col = header.replace(/^# /, "").split(",");
    const [status, check] = [col.indexOf("status"), col.indexOf("check_status")];
    return new Map(rows.map((r) => r.split(",")).map((f) => [`${f[0]}/${f[1]}`, [f[status], f[check]] as [string, string]]));
}

describe("proxy config in a real HAProxy on loopback (skipped without Linux, haproxy and redis-server)", function () {
    this.timeout(30000);
    let dir = "";
    const children: ChildProcess[] = [];
    const sentinels: net.Server[] = [];
    let haproxyLog = "";
    let named = "127.0.0.1";
    const badLogins: string[][] = [];
    let socket = "";
    let proxyPort = 0;
    let statsPort = 0;

    let redisPort = 0;
    /** The checks of node's sentinel votes, one per sentinel. */
    const votes = (node: string) => ["a", "b", "c"].map((s) => `sentinels_name_${node}/sentinel_${s}`);

    const stat = async (key: string) => (await showStat(socket)).get(key)?.join(" ");
    /** Waits until every one of `keys` ("backend/server") has `status` ("UP L7OK", or a pattern). */
    const statsReach = async (keys: string[], status: string | RegExp) => {
        let seen = new Map<string, [string, string]>();
        for (let i = 0; i < 100; i++) {
            seen = await showStat(socket).catch(() => new Map());
            if (keys.every((k) => (typeof status === "string" ? seen.get(k)?.join(" ") === status : status.test(seen.get(k)?.join(" ") ?? "")))) return;
            await sleep(100);
        }
        assert.fail(`not ${status}: ${JSON.stringify(keys.map((k) => [k, seen.get(k)]))}; bad logins: ${JSON.stringify(badLogins)}\n${haproxyLog}`);
    };
    /** A real redis-server on ip:redisPort, a master, with the healthcheck user. */
    const startRedis = async (ip: string) => {
        const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", ip, "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
        children.push(redis);
        for (let i = 0; ; i++) {
            if (await ask([ip, redisPort], "PING").catch(() => "")) break;
            if (i > 100) throw new Error(`redis-server on ${ip} does not answer`);
            await sleep(50);
        }
        assert.strictEqual(await ask([ip, redisPort], "ACL", "SETUSER", "healthcheck", "on", `>${secrets.healthCheck}`, "+auth", "+role", "+ping"), "+OK\r\n");
    };

    before(async function () {
        if (process.platform !== "linux" || !onPath("haproxy") || !onPath("redis-server")) return this.skip();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-proxy-"));
        socket = path.join(dir, "admin.sock");
        const sentinelPort = await freePort();
        [redisPort, proxyPort, statsPort] = [await freePort(), await freePort(), await freePort()];
        await startRedis("127.0.0.1");

        for (const ip of ["127.0.0.1", "127.0.0.2", "127.0.0.3"]) {
            const server = net.createServer((s) => {
                let buf: Buffer = Buffer.alloc(0);
                let authed = false;
                s.on("error", () => {});
                s.on("data", (d) => {
                    let commands: string[][];
                    [commands, buf] = readCommands(Buffer.concat([buf, d]));
                    for (const [name, ...args] of commands) {
                        if (name === "AUTH") {
                            authed = args.length === 2 && args[0] === "discovery" && args[1] === secrets.sentinel;
                            if (!authed) badLogins.push(args);
                            s.write(authed ? "+OK\r\n" : "-WRONGPASS invalid username-password pair\r\n");
                        } else if (name === "SENTINEL" && authed && args.join(" ") === "get-master-addr-by-name mymaster") {
                            s.write(resp(named, String(redisPort)));
                        } else if (name === "QUIT") {
                            s.end("+OK\r\n");
                        } else {
                            s.write("-ERR unexpected\r\n");
                        }
                    }
                });
            });
            sentinels.push(server);
            await new Promise<void>((resolve, reject) => server.once("error", reject).listen(sentinelPort, ip, resolve));
        }

        const parsed = parseStackConfig(
            proxiedConfig(
                { nodes: ["a", "b"], writeVip: "10.1.0.100", readVip: "10.1.0.101", checkIntervalMs: CHECK_MS, port: proxyPort, statsPort },
                { redis: { maxmemory: "1gb", port: redisPort }, sentinel: { port: sentinelPort } },
            ),
        );
        // Loopback addresses, which the stack configuration rightly refuses.
        const cfg = {
            ...parsed,
            nodes: parsed.nodes.map((n, i) => ({ ...n, privateIp: `127.0.0.${i + 1}` })),
            proxy: { ...parsed.proxy, writeVip: WRITE_VIP, readVip: "127.0.0.101" },
        };
        const file = path.join(dir, "haproxy.cfg");
        fs.writeFileSync(
            file,
            renderHaproxyConfig(cfg, cfg.nodes[0], secrets)
                .replace("/run/haproxy/admin.sock", socket)
                .replace("/var/lib/haproxy/server-state", path.join(dir, "server-state"))
                .replace(`lua-load ${GUARD_LUA_PATH}`, `lua-load ${path.join(__dirname, "..", "..", "assets", "haproxy-guard.lua")}`)
                .replace("log /dev/log local0", "log stderr local0")
                .replace(/^ {4}(user|group) haproxy\n/gm, ""),
        );
        const haproxy = spawn("haproxy", ["-db", "-f", file], { stdio: ["ignore", "ignore", "pipe"] });
        haproxy.stderr!.on("data", (d) => (haproxyLog += d));
        children.push(haproxy);

        // Checked, not just UP as HAProxy assumes before the first check: L7OK.
        await statsReach(["redis_master_a/a", ...votes("a")], "UP L7OK");
    });

    after(async () => {
        for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
        await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : undefined)));
        await Promise.all(sentinels.map((s) => new Promise((r) => s.close(r))));
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("logs in to Redis and Sentinel with passwords of every printable character", async () => {
        assert.strictEqual(await stat("redis_master_a/a"), "UP L7OK");
        assert.deepStrictEqual(badLogins, []);
    });

    it("opens the stats page to admin with the whole password, to no one else", async () => {
        const get = (auth: string) =>
            new Promise<number>((resolve, reject) =>
                http.get({ host: "127.0.0.1", port: statsPort, path: "/", auth }, (res) => resolve(res.resume().statusCode!)).on("error", reject),
            );
        assert.strictEqual(await get(`admin:${secrets.stats}`), 200);
        assert.strictEqual(await get(`admin:${secrets.stats.slice(0, -1)}`), 401);
    });

    it("cuts a write session when the sentinels name another node, while its node still says master", async () => {
        const client = net.connect(proxyPort, WRITE_VIP);
        let answers = "";
        let closedAt = 0;
        client.on("data", (d) => (answers += d));
        client.on("close", () => (closedAt = Date.now()));
        client.on("error", () => {});
        client.write(resp("PING"));
        await sleep(300);
        assert.strictEqual(answers, "+PONG\r\n", "the write VIP reaches node a");

        const switched = Date.now();
        named = "127.0.0.2";
        while (!closedAt && Date.now() - switched < 5000) {
            client.write(resp("PING"));
            await sleep(10);
        }
        assert.ok(closedAt, "the session must be cut");
        const took = closedAt - switched;
        // The checks notice within an interval (fall 1), the guard within a quarter more.
        assert.ok(took <= 2 * CHECK_MS + 300, `cut after ${took} ms`);
        assert.strictEqual(await stat("redis_master_a/a"), "UP L7OK", "node a still says master: the guard cut it");
        assert.match(haproxyLog, /redis-ha guard: [01] sentinel\(s\) name a, fewer than 2/);
        console.log(`      (session cut ${took} ms after the sentinels named another node; checks every ${CHECK_MS} ms)`);
    });

    it("sends a write to neither node while both say master and hold a majority of votes (one of them stale)", async () => {
        named = "127.0.0.1";
        await statsReach(votes("a"), "UP L7OK");
        await startRedis("127.0.0.2");
        await statsReach(["redis_master_b/b"], "UP L7OK");
        // Node a's votes as a check that has not run since the failover sees them: still there.
        for (const v of votes("a")) await adminSocket(socket, `disable health ${v}`);
        named = "127.0.0.2";
        await statsReach(votes("b"), "UP L7OK");
        const bindOf = async () => (await ask([WRITE_VIP, proxyPort], "CONFIG", "GET", "bind")).split("\r\n")[4] || "closed";
        for (let i = 0; i < 5; i++) assert.strictEqual(await bindOf(), "closed", "a write connection reached a node while two qualify");
        for (const v of votes("a")) await adminSocket(socket, `enable health ${v}`);
        await statsReach(votes("a"), /^DOWN /);
        assert.strictEqual(await bindOf(), "127.0.0.2", "the write VIP reaches node b once a's votes are gone");
    });
});
