// What HAProxy and keepalived are told: the routing rules that keep writes off a node that is
// not the master, the Lua guard that cuts the sessions of a demoted one, passwords that survive
// HAProxy's parser whatever they hold, and the VRRP setup. tests/unit/proxy-haproxy.test.ts runs
// the same configuration in a real HAProxy.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseStackConfig } from "../../components/config";
import { GUARD_LUA_PATH, renderHaproxyConfig, renderKeepalivedConfig } from "../../components/proxy-config";
import { issueCa, issueCert } from "../../components/tls-certs";
import { proxiedConfig } from "./fixtures";
import { onPath } from "./loopback";

const cfg = parseStackConfig(proxiedConfig({ nodes: ["redis-a", "redis-b"], writeVip: "10.1.0.100", readVip: "10.1.0.101", checkIntervalMs: 500 }, {}, "redis-"));
const secrets = { healthCheck: "HC", sentinel: "SP", stats: "ST" };
const haproxy = renderHaproxyConfig(cfg, cfg.nodes[0], secrets);

const ASSETS = path.join(__dirname, "..", "..", "assets");
const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/** Every printable ASCII character but space, in each password. */
const nasty = { healthCheck: `hc${PUNCTUATION}Aa0`, sentinel: `sp${PUNCTUATION}Bb1`, stats: `st${PUNCTUATION}Cc2` };

/**
 * The arguments of one haproxy.cfg line, read the way HAProxy's parser does (parse_line in
 * src/tools.c): blanks separate arguments; `#` outside quotes starts a comment; single quotes
 * keep everything as it is; elsewhere `\` escapes (\xHH, \r, \n, \t, or one of \ # $ ' " and space).
 * An unescaped `$` outside single quotes would be an environment variable to HAProxy: this
 * reader refuses it, as it refuses an unknown escape or an open quote.
 */
function haproxyArgs(line: string): Buffer[] {
    const args: Buffer[] = [];
    let arg: number[] | undefined;
    let quote: string | undefined;
    const escapes: Record<string, number> = { r: 0x0d, n: 0x0a, t: 0x09, " ": 0x20, "\\": 0x5c, "#": 0x23, $: 0x24, "'": 0x27, '"': 0x22 };
    for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (quote === "'") {
            if (c === "'") quote = undefined;
            else arg!.push(c.charCodeAt(0));
        } else if (c === '"' || (c === "'" && !quote)) {
            arg ??= [];
            quote = quote ? undefined : c;
        } else if (!quote && (c === " " || c === "\t")) {
            if (arg) args.push(Buffer.from(arg));
            arg = undefined;
        } else if (!quote && c === "#") {
            break;
        } else if (c === "$") {
            throw new Error(`unescaped $ (HAProxy would expand a variable) in: ${line}`);
        } else if (c === "\\") {
            const next = line[++i];
            if (next === "x") {
                const hex = line.slice(i + 1, i + 3);
                assert.match(hex, /^[0-9a-fA-F]{2}$/, `bad \\x escape in: ${line}`);
                (arg ??= []).push(parseInt(hex, 16));
                i += 2;
            } else if (next !== undefined && next in escapes) {
                (arg ??= []).push(escapes[next]);
            } else {
                throw new Error(`unknown escape \\${next} in: ${line}`);
            }
        } else {
            (arg ??= []).push(c.charCodeAt(0));
        }
    }
    assert.strictEqual(quote, undefined, `open quote in: ${line}`);
    if (arg) args.push(Buffer.from(arg));
    return args;
}

/** A RESP multibulk command back into its arguments; throws unless `bytes` is exactly one. */
function respArgs(bytes: Buffer): string[] {
    const text = bytes.toString("latin1");
    const head = /^\*(\d+)\r\n/.exec(text);
    assert.ok(head, `not a RESP command: ${JSON.stringify(text)}`);
    let at = head[0].length;
    const args: string[] = [];
    for (let k = 0; k < Number(head[1]); k++) {
        const len = /^\$(\d+)\r\n/.exec(text.slice(at));
        assert.ok(len, `no bulk string at ${at}: ${JSON.stringify(text)}`);
        at += len[0].length;
        args.push(text.slice(at, at + Number(len[1])));
        at += Number(len[1]);
        assert.strictEqual(text.slice(at, at + 2), "\r\n");
        at += 2;
    }
    assert.strictEqual(at, text.length, `bytes after the command: ${JSON.stringify(text.slice(at))}`);
    return args;
}

/** The arguments of each line that starts with `keywords` (blanks folded), as HAProxy reads them. */
function directives(config: string, ...keywords: string[]): Buffer[][] {
    return config
        .split("\n")
        .map(haproxyArgs)
        .filter((args) => keywords.every((k, i) => args[i]?.toString() === k))
        .map((args) => args.slice(keywords.length));
}


describe("proxy config", () => {
    it("sends writes to a node only when it says master and a majority of sentinels name it", () => {
        assert.match(haproxy, /^frontend redis_write\n {4}bind 10\.1\.0\.100:6379$/m);
        for (const n of ["a", "b", "c"]) {
            assert.ok(haproxy.includes(`    use_backend redis_master_redis_${n} if { srv_is_up(redis_master_redis_${n}/redis_${n}) } { nbsrv(sentinels_name_redis_${n}) ge 2 }`));
        }
        assert.match(haproxy, /^ {4}default_backend redis_none$/m);
        assert.ok(!/^backend redis_none\n {4}server/m.test(haproxy), "the no-target backend must have no server");
    });

    it("sends writes to no node while two qualify, before any rule that picks one (every pair, in both frontends)", () => {
        const q = (n: string) => `{ srv_is_up(redis_master_redis_${n}/redis_${n}) } { nbsrv(sentinels_name_redis_${n}) ge 2 }`;
        const write = haproxy.slice(haproxy.indexOf("frontend redis_write"), haproxy.indexOf("frontend redis_read"));
        const rules = write.split("\n").filter((l) => l.startsWith("    use_backend"));
        assert.deepStrictEqual(rules.slice(0, 3), [
            `    use_backend redis_none if ${q("a")} ${q("b")}`,
            `    use_backend redis_none if ${q("a")} ${q("c")}`,
            `    use_backend redis_none if ${q("b")} ${q("c")}`,
        ]);
        assert.deepStrictEqual(rules.slice(3).map((r) => r.split(" ")[5]), ["redis_master_redis_a", "redis_master_redis_b", "redis_master_redis_c"]);
    });

    it("matches the whole address in a sentinel's answer, conclusively", () => {
        const block = haproxy.slice(haproxy.indexOf("backend sentinels_name_redis_a"), haproxy.indexOf("backend redis_master_redis_a"));
        assert.deepStrictEqual(
            directives(block, "tcp-check", "send").map(([c]) => respArgs(c)),
            [["AUTH", "discovery", "SP"], ["SENTINEL", "get-master-addr-by-name", "mymaster"], ["QUIT"]],
        );
        assert.ok(block.includes("tcp-check expect min-recv 0 rstring '^\\*2\\r\\n\\$[0-9]+\\r\\n10\\.1\\.0\\.1\\r\\n'"));
        assert.match(block, /default-server inter 100 fall 1 rise 1/); // votes checked as often as servers that are down
        assert.strictEqual((block.match(/^ {4}server sentinel_/gm) ?? []).length, 3);
    });

    it("checks roles as the healthcheck user and cuts sessions of a node that fails", () => {
        const block = haproxy.slice(haproxy.indexOf("backend redis_master_redis_a"), haproxy.indexOf("backend sentinels_name_redis_b"));
        assert.deepStrictEqual(
            directives(block, "tcp-check", "send").map(([c]) => respArgs(c)),
            [["AUTH", "healthcheck", "HC"], ["ROLE"], ["QUIT"]],
        );
        assert.ok(block.includes("tcp-check expect min-recv 0 rstring '^\\*3\\r\\n\\$6\\r\\nmaster\\r\\n'"));
        assert.match(haproxy, /default-server inter 500 fastinter 100 downinter 100 fall 2 rise 2 on-marked-down shutdown-sessions/);
        assert.match(haproxy, /timeout check 250ms/);
        assert.match(haproxy, /server-state-file \/var\/lib\/haproxy\/server-state/);
    });

    it("loads the Lua guard with the majority and its interval set before it", () => {
        const global = haproxy.slice(haproxy.indexOf("global\n"), haproxy.indexOf("\ndefaults\n"));
        assert.match(global, /\n {4}setenv REDIS_HA_GUARD_MAJORITY 2\n {4}setenv REDIS_HA_GUARD_INTERVAL_MS 125\n {4}lua-load \/etc\/haproxy\/redis-ha-guard\.lua\n/);
        const five = parseStackConfig({
            ...proxiedConfig({ nodes: ["a", "b"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }),
            nodes: ["a", "b", "c", "d", "e"].map((name, i) => ({ name, host: `10.1.0.${i + 1}` })),
        });
        const rendered = renderHaproxyConfig(five, five.nodes[0], secrets);
        assert.match(rendered, /^ {4}setenv REDIS_HA_GUARD_MAJORITY 3$/m);
        assert.match(rendered, /^ {4}setenv REDIS_HA_GUARD_INTERVAL_MS 250$/m, "a quarter of the default 1000 ms");
        assert.ok(rendered.includes("{ nbsrv(sentinels_name_e) ge 3 }"));
    });

    it("installs the guard where haproxy.cfg loads it, and removes it with the proxy", () => {
        assert.ok(fs.readFileSync(path.join(ASSETS, "vip-proxy.sh"), "utf8").includes(`guard_lua=${GUARD_LUA_PATH} `));
        assert.ok(fs.readFileSync(path.join(ASSETS, "vip-proxy-remove.sh"), "utf8").includes(`rm -f ${GUARD_LUA_PATH} `));
        const lua = fs.readFileSync(path.join(ASSETS, "haproxy-guard.lua"), "utf8");
        for (const name of ["REDIS_HA_GUARD_MAJORITY", "REDIS_HA_GUARD_INTERVAL_MS", "^sentinels_name_", '"redis_master_"', "shut_sess"]) {
            assert.ok(lua.includes(name), `the guard uses ${name}`);
        }
    });

    it("the Lua guard compiles (skipped without luac5.4, luac5.3 or luac on PATH)", function () {
        const luac = ["luac5.4", "luac5.3", "luac"].find(onPath);
        if (!luac) return this.skip();
        execFileSync(luac, ["-p", path.join(ASSETS, "haproxy-guard.lua")], { stdio: "pipe" });
    });

    it("reads from linked replicas, else from the master", () => {
        const read = haproxy.slice(haproxy.indexOf("frontend redis_read"), haproxy.indexOf("listen stats"));
        assert.match(read, /bind 10\.1\.0\.101:6379/);
        assert.match(read, /use_backend redis_replicas if \{ nbsrv\(redis_replicas\) gt 0 \}\n( {4}use_backend redis_none if .*\n){3} {4}use_backend redis_master_redis_a/);
        const noFallback = renderHaproxyConfig({ ...cfg, proxy: { ...cfg.proxy, readFallbackToMaster: false } }, cfg.nodes[0], secrets);
        assert.ok(!noFallback.slice(noFallback.indexOf("frontend redis_read")).includes("use_backend redis_master"));
    });

    it("binds the stats page to the node's private address, behind the password", () => {
        assert.match(haproxy, /^listen stats\n {4}bind 10\.1\.0\.1:8404\n {4}mode http/m);
        assert.deepStrictEqual(directives(haproxy, "stats", "auth"), [[Buffer.from("admin:ST")]]);
    });

    describe("passwords with every printable character", () => {
        const rendered = renderHaproxyConfig(cfg, cfg.nodes[0], nasty);

        it("every line reads back without a variable, a comment or an open quote cutting it", () => {
            for (const line of rendered.split("\n")) haproxyArgs(line);
            assert.ok(!/\$[A-Za-z_{]/.test(rendered.replace(/'[^']*'/g, "")), "no $NAME outside single quotes");
        });

        it("each check sends its AUTH as exactly the RESP bytes of the password", () => {
            const sends = directives(rendered, "tcp-check", "send");
            assert.ok(sends.every((args) => args.length === 1), "one argument per send");
            const bytes = sends.map(([b]) => b.toString("latin1"));
            const auth = (user: string, pw: string) => `*3\r\n$4\r\nAUTH\r\n$${user.length}\r\n${user}\r\n$${pw.length}\r\n${pw}\r\n`;
            assert.strictEqual(bytes.filter((b) => b === auth("healthcheck", nasty.healthCheck)).length, 4, "three masters and the replicas");
            assert.strictEqual(bytes.filter((b) => b === auth("discovery", nasty.sentinel)).length, 3, "one per node");
            assert.strictEqual(bytes.filter((b) => b.includes("AUTH")).length, 7);
            for (const [b] of sends) respArgs(b);
        });

        it("the stats page takes user admin and the whole password (the first colon separates them)", () => {
            const [[auth]] = directives(rendered, "stats", "auth");
            const text = auth.toString("latin1");
            assert.strictEqual(text.slice(0, text.indexOf(":")), "admin");
            assert.strictEqual(text.slice(text.indexOf(":") + 1), nasty.stats);
        });

        it("haproxy -c accepts the file, the guard loaded (skipped when haproxy is not on PATH)", function () {
            if (!onPath("haproxy")) return this.skip();
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-haproxy-"));
            try {
                const file = path.join(dir, "haproxy.cfg");
                fs.writeFileSync(file, rendered.replace(`lua-load ${GUARD_LUA_PATH}`, `lua-load ${path.join(ASSETS, "haproxy-guard.lua")}`));
                try {
                    execFileSync("haproxy", ["-c", "-f", file], { stdio: "pipe" });
                } catch (e) {
                    assert.fail(`haproxy -c: ${(e as { stderr?: Buffer }).stderr?.toString()}`);
                }
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    });

    describe("with TLS", () => {
        const tlsCfg = (authClients: boolean) =>
            parseStackConfig(proxiedConfig({ nodes: ["redis-a", "redis-b"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }, { tls: { enabled: true, authClients } }, "redis-"));
        const servers = (text: string) => text.split("\n").filter((l) => l.startsWith("    server "));

        it("checks every Redis and Sentinel over TLS against the cluster's CA; clients' traffic passes through (no ssl on the server lines)", () => {
            const text = renderHaproxyConfig(tlsCfg(false), cfg.nodes[0], secrets);
            assert.ok(servers(text).length > 0);
            for (const line of servers(text)) assert.match(line, / check check-ssl verify required ca-file \/etc\/ssl\/redis-ha\/ca\.crt$/);
            assert.doesNotMatch(text, /^ {4}tcp-check connect$/m);
            assert.strictEqual(text.match(/^ {4}tcp-check connect ssl$/gm)?.length, text.match(/^ {4}option tcp-check$/gm)?.length);
            assert.doesNotMatch(text, /^ {4}bind .* ssl/m);
        });

        it("presents the node's certificate in its checks when servers ask for client certificates", () => {
            for (const line of servers(renderHaproxyConfig(tlsCfg(true), cfg.nodes[0], secrets))) assert.match(line, / crt \/etc\/ssl\/redis-ha\/node\.pem$/);
        });

        it("haproxy -c accepts it with a real CA and node certificate (skipped when haproxy is not on PATH)", async function () {
            if (!onPath("haproxy")) return this.skip();
            const ca = await issueCa("test CA", 10);
            const node = await issueCert(ca, { name: "redis-a", ips: ["10.1.0.1"] }, 10);
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-haproxy-tls-"));
            try {
                fs.writeFileSync(path.join(dir, "ca.crt"), ca.cert);
                fs.writeFileSync(path.join(dir, "node.pem"), node.cert + node.key);
                const file = path.join(dir, "haproxy.cfg");
                const text = renderHaproxyConfig(tlsCfg(true), cfg.nodes[0], secrets).replaceAll("/etc/ssl/redis-ha", dir);
                fs.writeFileSync(file, text.replace(`lua-load ${GUARD_LUA_PATH}`, `lua-load ${path.join(ASSETS, "haproxy-guard.lua")}`));
                try {
                    execFileSync("haproxy", ["-c", "-f", file], { stdio: "pipe" });
                } catch (e) {
                    assert.fail(`haproxy -c: ${(e as { stderr?: Buffer }).stderr?.toString()}`);
                }
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    });

    it("floats both VIPs with unicast VRRP, following HAProxy, without preemption", () => {
        const k = renderKeepalivedConfig(cfg, cfg.nodes[1], 1);
        assert.match(k, /state BACKUP\n {4}nopreempt/);
        assert.match(k, /priority 140/);
        assert.match(k, /unicast_src_ip 10\.1\.0\.2\n {4}unicast_peer \{\n {8}10\.1\.0\.1\n {4}\}/);
        assert.match(k, /10\.1\.0\.100\/32 dev @IFACE@\n {8}10\.1\.0\.101\/32 dev @IFACE@/);
        assert.match(k, /track_script \{\n {8}haproxy_alive/);
        // adverts as often as HAProxy's checks of down servers (VRRP 3 takes fractions of a second)
        assert.match(k, /vrrp_version 3/);
        assert.match(k, /advert_int 0\.1\n/);
    });
});
