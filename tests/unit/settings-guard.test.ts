// What a live stack refuses to change in place, and the way each message gives.
import * as assert from "assert";
import { refusals } from "../../components/settings-guard";

const live = {
    runtime: "packages",
    masterName: "mymaster",
    redisPort: 6379,
    sentinelPort: 26379,
    addresses: { a: { host: "10.0.0.1", privateIp: "10.0.0.1" }, b: { host: "10.0.0.2", privateIp: "10.0.0.2" }, c: { host: "10.0.0.3", privateIp: "10.0.0.3" } },
};
const changed = (patch: object) => refusals(live, { ...live, ...patch });

describe("settings guard", () => {
    it("lets the same settings, a grown or shrunk node list, and a replaced server through", () => {
        assert.deepStrictEqual(changed({}), []);
        assert.deepStrictEqual(changed({ addresses: { ...live.addresses, d: { host: "10.0.0.4", privateIp: "10.0.0.4" } } }), []);
        assert.deepStrictEqual(changed({ addresses: { a: live.addresses.a, b: live.addresses.b } }), []);
        // Same name, a new server with a new address: a replacement.
        assert.deepStrictEqual(changed({ addresses: { ...live.addresses, c: { host: "10.0.0.9", privateIp: "10.0.0.9" } } }), []);
    });

    it("records, without refusing, what a stack from before this guard did not record", () => {
        assert.deepStrictEqual(refusals({ runtime: "packages" }, live), []);
    });

    it("refuses a new group name or port, pointing to a re-creation that keeps the data", () => {
        assert.match(changed({ masterName: "other" }).join(), /^redis-ha:sentinel\.masterName changed from mymaster to other, .*set it back to mymaster, or re-create the cluster keeping its data \(README "Day 2"\): pulumi destroy/);
        assert.match(changed({ redisPort: 6380 }).join(), /^redis-ha:redis\.port changed from 6379 to 6380/);
        assert.match(changed({ sentinelPort: 26380 }).join(), /^redis-ha:sentinel\.port changed from 26379 to 26380/);
        assert.match(changed({ runtime: "docker" }).join(), /^redis-ha:runtime changed from packages to docker/);
    });

    it("refuses turning TLS on or off, a stack from before TLS counting as off, with both ways to move", () => {
        assert.match(changed({ tls: true }).join(), /^redis-ha:tls\.enabled changed from false to true, .*set it back to false, or move to TLS as README "TLS" explains: either a new stack .*or, with downtime, re-create the cluster/);
        assert.match(refusals({ ...live, tls: true }, live).join(), /^redis-ha:tls\.enabled changed from true to false/);
        assert.deepStrictEqual(refusals({ ...live, tls: true }, { ...live, tls: true }), []);
    });

    it("refuses switching the server either way, a stack from before the choice counting as redis", () => {
        assert.match(changed({ server: "valkey" }).join(), /^redis-ha:redis\.server changed from redis to valkey, .*set it back to redis, or move as README "Choosing the server" explains/);
        assert.match(refusals({ ...live, server: "valkey" }, live).join(), /^redis-ha:redis\.server changed from valkey to redis/);
        assert.deepStrictEqual(changed({ server: "redis" }), []);
    });

    it("refuses a new address on the same server, and an address handed to another name, with two runs", () => {
        const moved = changed({ addresses: { ...live.addresses, b: { host: "10.0.0.2", privateIp: "10.0.1.2" } } });
        assert.match(moved.join(), /^redis-ha:nodes \(b\): privateIp changed from 10\.0\.0\.2 to 10\.0\.1\.2 on the same server \(10\.0\.0\.2\), .*do it in two runs: remove b/);
        const renamed = changed({ addresses: { a: live.addresses.a, b: live.addresses.b, d: live.addresses.c } });
        assert.match(renamed.join(), /^redis-ha:nodes: 10\.0\.0\.3 was node c and is now node d: a node is not renamed in place; do it in two runs: remove c/);
    });
});
