// What HAProxy and keepalived are told: the routing rules that keep writes off a node that is
// not the master, and the VRRP setup. (HAProxy itself checks the syntax in the lab tests.)
import * as assert from "assert";
import { parseStackConfig } from "../../components/config";
import { renderHaproxyConfig, renderKeepalivedConfig } from "../../components/proxy-config";
import { proxiedConfig } from "./fixtures";

const cfg = parseStackConfig(proxiedConfig({ nodes: ["redis-a", "redis-b"], writeVip: "10.1.0.100", readVip: "10.1.0.101", checkIntervalMs: 500 }, {}, "redis-"));
const secrets = { healthCheck: "HC", sentinel: "SP", stats: "ST" };
const haproxy = renderHaproxyConfig(cfg, cfg.nodes[0], secrets);

describe("proxy config", () => {
    it("sends writes to a node only when it says master and a majority of sentinels name it", () => {
        assert.match(haproxy, /^frontend redis_write\n {4}bind 10\.1\.0\.100:6379$/m);
        for (const n of ["a", "b", "c"]) {
            assert.ok(haproxy.includes(`    use_backend redis_master_redis_${n} if { srv_is_up(redis_master_redis_${n}/redis_${n}) } { nbsrv(sentinels_name_redis_${n}) ge 2 }`));
        }
        assert.match(haproxy, /^ {4}default_backend redis_none$/m);
        assert.ok(!/^backend redis_none\n {4}server/m.test(haproxy), "the no-target backend must have no server");
    });

    it("matches the whole address in a sentinel's answer, conclusively", () => {
        const block = haproxy.slice(haproxy.indexOf("backend sentinels_name_redis_a"), haproxy.indexOf("backend redis_master_redis_a"));
        assert.ok(block.includes(`tcp-check send "AUTH SP\\r\\n"`));
        assert.ok(block.includes("tcp-check expect min-recv 0 rstring '^\\*2\\r\\n\\$[0-9]+\\r\\n10\\.1\\.0\\.1\\r\\n'"));
        assert.match(block, /default-server fall 1 rise 2/);
        assert.strictEqual((block.match(/^ {4}server sentinel_/gm) ?? []).length, 3);
    });

    it("checks roles as the healthcheck user and cuts sessions of a node that fails", () => {
        assert.ok(haproxy.includes(`tcp-check send "AUTH healthcheck HC\\r\\n"`));
        assert.ok(haproxy.includes("tcp-check expect min-recv 0 rstring '^\\*3\\r\\n\\$6\\r\\nmaster\\r\\n'"));
        assert.match(haproxy, /default-server inter 500 fall 2 rise 2 on-marked-down shutdown-sessions/);
        assert.match(haproxy, /timeout check 250ms/);
        assert.match(haproxy, /server-state-file \/var\/lib\/haproxy\/server-state/);
    });

    it("reads from linked replicas, else from the master", () => {
        const read = haproxy.slice(haproxy.indexOf("frontend redis_read"), haproxy.indexOf("listen stats"));
        assert.match(read, /bind 10\.1\.0\.101:6379/);
        assert.match(read, /use_backend redis_replicas if \{ nbsrv\(redis_replicas\) gt 0 \}\n {4}use_backend redis_master_redis_a/);
        const noFallback = renderHaproxyConfig({ ...cfg, proxy: { ...cfg.proxy, readFallbackToMaster: false } }, cfg.nodes[0], secrets);
        assert.ok(!noFallback.slice(noFallback.indexOf("frontend redis_read")).includes("use_backend redis_master"));
    });

    it("binds the stats page to the node's private address, behind the password", () => {
        assert.match(haproxy, /^listen stats\n {4}bind 10\.1\.0\.1:8404\n {4}mode http/m);
        assert.match(haproxy, /stats auth admin:ST/);
    });

    it("floats both VIPs with unicast VRRP, following HAProxy, without preemption", () => {
        const k = renderKeepalivedConfig(cfg, cfg.nodes[1], 1);
        assert.match(k, /state BACKUP\n {4}nopreempt/);
        assert.match(k, /priority 140/);
        assert.match(k, /unicast_src_ip 10\.1\.0\.2\n {4}unicast_peer \{\n {8}10\.1\.0\.1\n {4}\}/);
        assert.match(k, /10\.1\.0\.100\/32 dev @IFACE@\n {8}10\.1\.0\.101\/32 dev @IFACE@/);
        assert.match(k, /track_script \{\n {8}haproxy_alive/);
    });
});
