// TLS for real: a cluster with tls.enabled and the VIP proxy on the lab hosts. Plaintext and a
// stranger's CA are refused by Redis and Sentinel; the outputs' ioredis options work through the
// sentinels and through the write VIP; replication runs over TLS (no plaintext port is left to
// replicate on); a failover under writers on both paths loses no acknowledged write; the keys
// stay secret in the state and on the hosts; turning client certificates on is a live change
// after which a client without one is refused; turning TLS off is refused at preview; destroy
// takes the TLS files off; certificates brought by the user are served instead of the program's. Figures (failover window, TLS vs plaintext throughput) are printed.
import * as assert from "assert";
import Redis, { type RedisOptions } from "ioredis";
import { connect as tlsConnect } from "tls";
import { discoverMaster } from "../../components/discovery";
import { issueCa, issueCert } from "../../components/tls-certs";
import { X509Certificate } from "crypto";
import type { TlsClientOptions } from "../../components/redis-client";
import { benchCompare, tlsBenchArgs } from "../../scripts/drill/bench";
import { formatTable, runDrill, writer } from "../../scripts/drill/drill";
import { mkdtempSync, rmSync } from "fs";
import * as os from "os";
import * as path from "path";
import { askRedis, backendFilesContaining, freshStack, labConfig, labHosts, labVips, onHost, proxyPasswords, ROOT } from "./lab";
import { execFileSync } from "child_process";

describe("lab TLS: Redis, replication, Sentinel and the VIPs over TLS", function () {
    const hosts = labHosts();
    const passwords = proxyPasswords();
    const { writeVip, readVip } = labVips(hosts);
    const figures: string[] = [];
    const proxy = JSON.stringify({ nodes: [hosts[0].name, hosts[1].name], writeVip, readVip });
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let outputs: Record<string, any> = {};
    const tlsOf = (): TlsClientOptions => outputs.ioredis.tls;
    /** As admin, with the outputs' TLS options, others, or "plain" (none). */
    const admin = (host: string, port = 6379, tls: TlsClientOptions | "plain" = tlsOf()): RedisOptions => ({
        host,
        port,
        username: "admin",
        password: passwords.adminPassword,
        ...(tls === "plain" ? {} : { tls }),
    });
    const role = (opts: RedisOptions) => askRedis(opts, async (c) => String(((await c.call("ROLE")) as unknown[])[0]));
    /** The serial number of the certificate a TLS listener serves (trusting the outputs' CA). */
    const peerSerial = (host: string, port: number) =>
        new Promise<string>((resolve, reject) => {
            const s = tlsConnect({ host, port, ca: tlsOf().ca }, () => {
                resolve(s.getPeerCertificate().serialNumber);
                s.end();
            });
            s.on("error", reject);
        });
    const up = async () => {
        const result = await stack.up();
        outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
        return result;
    };

    before(async () => {
        stack = await freshStack("lab-tls", {
            ...labConfig(hosts, passwords),
            "redis-ha:proxy": { value: proxy },
            "redis-ha:tls": { value: JSON.stringify({ enabled: true }) },
        });
    });

    after(() => console.log(`    figures:\n${figures.map((f) => `      ${f}`).join("\n")}`));

    it("deploys with TLS; the outputs carry the CA for ioredis in sentinel mode and through the VIP; a re-run changes nothing", async () => {
        const [, seconds] = await (async () => {
            const t0 = Date.now();
            return [await up(), (Date.now() - t0) / 1000] as const;
        })();
        figures.push(`fresh pulumi up with TLS and the proxy: ${seconds.toFixed(1)} s`);
        const ca = outputs.tlsCaCertificate as string;
        assert.match(ca, /^-----BEGIN CERTIFICATE-----/);
        assert.deepStrictEqual(outputs.ioredis.tls, { ca });
        assert.deepStrictEqual(outputs.ioredis.sentinelTLS, { ca });
        assert.strictEqual(outputs.ioredis.enableTLSForSentinelMode, true);
        assert.deepStrictEqual(outputs.vipClient.tls, { ca });
        const again = await stack.up();
        assert.deepStrictEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], "a second up changed something");
    });

    it("refuses plaintext and a stranger's CA on every Redis and Sentinel; the outputs' CA gets in", async () => {
        const stranger = { ca: (await issueCa("attacker CA", 10)).cert };
        for (const h of hosts) {
            for (const port of [6379, 26379]) {
                assert.strictEqual(await role(admin(h.ip, port, "plain")), undefined, `${h.name}:${port} answered in clear`);
                assert.strictEqual(await role(admin(h.ip, port, stranger)), undefined, `${h.name}:${port} was trusted under another CA`);
            }
            assert.ok(["master", "slave"].includes((await role(admin(h.ip)))!), `${h.name}: no answer over TLS`);
            assert.strictEqual(await role(admin(h.ip, 26379)), "sentinel");
        }
        // And through the write VIP: TLS passes through HAProxy to the master.
        assert.strictEqual(await role(admin(writeVip, 6379, "plain")), undefined);
        assert.strictEqual(await role(admin(writeVip)), "master");
    });

    it("replicates over TLS: no node has a plaintext port, and every replica's link is up", async () => {
        for (const h of hosts) {
            const conf = await askRedis(admin(h.ip), async (c) => ({
                port: ((await c.call("CONFIG", "GET", "port")) as string[])[1],
                tlsReplication: ((await c.call("CONFIG", "GET", "tls-replication")) as string[])[1],
                info: await c.info("replication"),
            }));
            assert.ok(conf, `${h.name} does not answer`);
            assert.strictEqual(conf.port, "0", `${h.name} still listens in clear`);
            assert.strictEqual(conf.tlsReplication, "yes");
            if (/^role:slave/m.test(conf.info)) assert.match(conf.info, /^master_link_status:up/m, `${h.name}'s link is down`);
        }
    });

    it("keeps the keys secret: not in clear in the state, readable on the hosts by root and the redis group only", async () => {
        // The key as its node holds it: no backend file (state, history, backups) has it in clear.
        const body = onHost(hosts[0].name, "sed -n 2p /etc/ssl/redis-ha/node.key").trim();
        assert.ok(body.length > 20, "no key on the node");
        assert.deepStrictEqual(backendFilesContaining(body), []);
        assert.strictEqual(onHost(hosts[0].name, 'p=$(cat); journalctl --no-pager | grep -cF -- "$p" || true', body).trim(), "0", "the key is in the journal");
        for (const h of hosts) {
            assert.strictEqual(onHost(h.name, "stat -c '%a %U:%G' /etc/ssl/redis-ha/node.key /etc/ssl/redis-ha/node.pem /etc/ssl/redis-ha").trim(), "640 root:redis\n600 root:root\n750 root:redis");
        }
    });

    it("fails over under writers through the sentinels and the write VIP: no acknowledged write lost", async () => {
        const results = await runDrill(
            { hosts, sentinelClient: outputs.ioredis, vipClient: outputs.vipClient, masterName: "mymaster", adminPassword: passwords.adminPassword, tls: tlsOf() },
            ["stop", "poweroff"],
            { windowSeconds: 10, log: (l) => figures.push(l) },
        );
        figures.push(...formatTable(results).split("\n"));
        for (const r of results) {
            assert.notStrictEqual(r.newMaster, r.oldMaster, `${r.mode}: no failover`);
            for (const p of r.paths) {
                assert.ok(p.acknowledged > 50, `${r.mode}/${p.path}: only ${p.acknowledged} writes acknowledged`);
                assert.strictEqual(p.lost, 0, `${r.mode}/${p.path}: ${p.lost} acknowledged writes lost`);
            }
        }
    });

    it("measures TLS against plaintext on the same master (redis-benchmark, same run)", async () => {
        const named = await discoverMaster(hosts.map((h) => ({ host: h.ip, port: 26379 })), "mymaster", passwords.sentinelPassword, { tls: tlsOf() });
        const master = hosts.find((h) => h.ip === named?.host)!;
        // A plaintext port beside the TLS one for the comparison, closed again after; the same
        // interleaved redis-benchmark runs as `npm run bench` (scripts/drill/bench.ts).
        await askRedis(admin(master.ip), (c) => c.call("CONFIG", "SET", "port", "6390"));
        const dir = mkdtempSync(path.join(os.tmpdir(), "redis-ha-tls-test-"));
        try {
            const results = benchCompare({ host: master.ip, port: 6390 }, { host: master.ip, port: 6379, args: tlsBenchArgs(tlsOf(), dir) }, passwords.appPassword, 3);
            assert.deepStrictEqual(results.map((r) => r.test).sort(), ["GET", "SET"]);
            for (const r of results) {
                assert.ok(r.direct > 0 && r.vip > 0, `redis-benchmark gave no ${r.test} figure`);
                figures.push(`redis-benchmark ${r.test} to ${master.name} (-c 20, medians of 3 interleaved rounds): in clear ${r.direct.toFixed(0)} rps, TLS ${r.vip.toFixed(0)} rps; ratio ${r.ratio}`);
            }
        } finally {
            rmSync(dir, { recursive: true, force: true });
            await askRedis(admin(master.ip), (c) => c.call("CONFIG", "SET", "port", "0"));
        }
    });

    it("renews certificates due for renewal live: Redis keeps running (same run_id), every listener serves the new one, no write lost, a re-run is a no-op", async () => {
        const endpoints = [...hosts.flatMap((h) => [[h.ip, 6379], [h.ip, 26379]] as const), [writeVip, 6379] as const];
        const before = await Promise.all(endpoints.map(([h, p]) => peerSerial(h, p)));
        const runIds = await Promise.all(hosts.map((h) => askRedis(admin(h.ip), async (c) => /run_id:(\w+)/.exec(await c.info("server"))?.[1])));
        const client = new Redis({ ...outputs.ioredis, lazyConnect: true });
        client.on("error", () => undefined);
        await client.connect();
        const w = writer("sentinel", client, "tls:renew", 20);
        // With 365 days left on each certificate, a renewal window of 365 days makes every one due now.
        await stack.setConfig("redis-ha:tls", { value: JSON.stringify({ enabled: true, validityDays: 366, renewBeforeDays: 365 }) });
        const t0 = Date.now();
        await up();
        figures.push(`renewal run: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        await w.stop();
        const lost = await w.lost(client);
        client.disconnect();
        figures.push(`writes during the renewal: ${w.acked.length} acknowledged, lost ${lost}`);
        assert.strictEqual(lost, 0);
        const after = await Promise.all(endpoints.map(([h, p]) => peerSerial(h, p)));
        endpoints.forEach(([h, p], i) => assert.notStrictEqual(after[i], before[i], `${h}:${p} still serves the old certificate`));
        assert.deepStrictEqual(await Promise.all(hosts.map((h) => askRedis(admin(h.ip), async (c) => /run_id:(\w+)/.exec(await c.info("server"))?.[1]))), runIds, "a Redis restarted");
        const again = await stack.up();
        assert.deepStrictEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], "the run after the renewal changed something");
    });

    it("requires client certificates once tls.authClients is on (a live change); the outputs carry the app's, and the example consumer works with them", async () => {
        await stack.setConfig("redis-ha:tls", { value: JSON.stringify({ enabled: true, authClients: true, validityDays: 366, renewBeforeDays: 365 }) });
        await up();
        const tls = tlsOf();
        assert.match(String(tls.cert), /^-----BEGIN CERTIFICATE-----/);
        assert.match(String(tls.key), /PRIVATE KEY-----/);
        const caOnly = { ca: tls.ca };
        for (const h of hosts) {
            assert.strictEqual(await role(admin(h.ip, 6379, caOnly)), undefined, `${h.name}: Redis let a client without a certificate in`);
            assert.ok(await role(admin(h.ip)), `${h.name}: no answer with the app's certificate`);
        }
        assert.strictEqual(await role(admin(writeVip, 6379, caOnly)), undefined);
        assert.strictEqual(await role({ ...outputs.vipClient }), "master");
        // The example consumer, given the outputs as they are, works through both paths.
        const out = execFileSync("npx", ["ts-node", "examples/consumer/index.ts"], { cwd: ROOT, input: JSON.stringify(outputs), encoding: "utf8", stdio: ["pipe", "pipe", "ignore"] });
        assert.deepStrictEqual(JSON.parse(out), { sentinelRole: "master", readThroughVip: "written through the sentinels", vipRole: "master", readThroughSentinels: "written through the VIP" });
    });

    it("refuses turning TLS off on the live stack at preview, naming the key and the way", async () => {
        await stack.setConfig("redis-ha:tls", { value: JSON.stringify({ enabled: false }) });
        await assert.rejects(stack.preview(), /redis-ha:tls\.enabled changed from true to false/);
        await stack.setConfig("redis-ha:tls", { value: JSON.stringify({ enabled: true, authClients: true }) });
    });

    it("destroys everything, the TLS files with it", async () => {
        await stack.destroy();
        for (const h of hosts) assert.strictEqual(onHost(h.name, "test -e /etc/ssl/redis-ha && echo left || echo gone").trim(), "gone");
    });

    it("deploys with certificates brought by the user (tlsCertificates): the nodes serve them, the outputs trust their CA", async () => {
        const ca = await issueCa("the user's own CA", 30);
        const nodes = Object.fromEntries(
            await Promise.all(hosts.map(async (h) => [h.name, await issueCert(ca, { name: h.name, ips: [h.ip, writeVip, readVip] }, 20)] as const)),
        );
        const given = Object.fromEntries(Object.entries(nodes).map(([name, c]) => [name, { cert: c.cert, key: c.key }]));
        await stack.setConfig("redis-ha:tls", { value: JSON.stringify({ enabled: true, renewBeforeDays: 10 }) });
        await stack.setConfig("redis-ha:tlsCertificates", { value: JSON.stringify({ ca: ca.cert, nodes: given }), secret: true });
        await up();
        assert.strictEqual(outputs.tlsCaCertificate, ca.cert);
        for (const h of hosts) {
            const served = await peerSerial(h.ip, 6379);
            assert.strictEqual(served, new X509Certificate(nodes[h.name].cert).serialNumber, `${h.name} does not serve the user's certificate`);
        }
        const client = new Redis({ ...outputs.ioredis, lazyConnect: true });
        client.on("error", () => undefined);
        try {
            await client.connect();
            await client.set("tls:own", "yes");
            assert.strictEqual(await askRedis({ ...outputs.vipClient }, (c) => c.get("tls:own")), "yes");
        } finally {
            client.disconnect();
        }
        await stack.destroy();
        await stack.workspace.removeStack("lab-tls");
    });
});
