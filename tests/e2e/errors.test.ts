// Mistakes an operator makes, against the real engine: bad config stops the preview before any
// server is touched; an unreachable server fails the run before any step, naming it.
import * as assert from "assert";
import { freshStack, labConfig, labHosts, newPasswords } from "./lab";

describe("lab: clear errors", function () {
    const hosts = labHosts();

    it("rejects bad config at preview, naming the key and the fix", async () => {
        const stack = await freshStack("lab-bad-config", {
            ...labConfig(hosts, { ...newPasswords(), adminPassword: "too-short" }),
            "redis-ha:nodes": { value: JSON.stringify([{ name: "a", host: "10.0.0.300" }, { name: "a", host: hosts[0].ip }]) },
        });
        try {
            await assert.rejects(stack.preview(), (e: Error) => {
                assert.match(e.message, /redis-ha:nodes\[0\]\.host .*IPv4 address/);
                assert.match(e.message, /redis-ha:nodes\[1\]\.name duplicates nodes\[0\]\.name/);
                assert.match(e.message, /redis-ha:adminPassword is too short/);
                return true;
            });
        } finally {
            await stack.workspace.removeStack(stack.name, { force: true });
        }
    });

    it("refuses risky addresses and ports at preview, and warns about clear-text passwords", async () => {
        const passwords = newPasswords();
        const stack = await freshStack("lab-bad-config", {
            ...labConfig(hosts, passwords),
            "redis-ha:sentinel": { value: JSON.stringify({ port: 6379, downAfterMilliseconds: 5000, failoverTimeout: 5000 }) },
            "redis-ha:proxy": { value: JSON.stringify({ nodes: [hosts[0].name, hosts[1].name], writeVip: "127.0.0.100", readVip: "10.99.0.101" }) },
            "redis-ha:healthCheckPassword": { value: "hc-0123456789abcdef", secret: true },
            "redis-ha:statsPassword": { value: "st-0123456789abcdef", secret: true },
        });
        try {
            await assert.rejects(stack.preview(), (e: Error) => {
                assert.match(e.message, /redis-ha:sentinel\.port .*redis-ha:redis\.port/);
                assert.match(e.message, /redis-ha:sentinel\.failoverTimeout /);
                assert.match(e.message, /redis-ha:proxy\.writeVip is 127\.0\.0\.100, a loopback address/);
                assert.match(e.message, /redis-ha:proxy\.readVip .*proxy\.network/);
                return true;
            });
            // Legal but risky: a password in the stack file in clear is a warning, not an error.
            await stack.removeConfig("redis-ha:proxy");
            await stack.setAllConfig({ ...labConfig(hosts, passwords), "redis-ha:appPassword": { value: passwords.appPassword } });
            let output = "";
            await stack.preview({ onOutput: (o) => (output += o) });
            assert.match(output, /warning: .*redis-ha:appPassword .*--secret/);
        } finally {
            await stack.workspace.removeStack(stack.name, { force: true });
        }
    });

    it("names the server it cannot reach", async () => {
        const ghost = hosts[0].ip.replace(/\.\d+$/, ".250"); // on the lab bridge, no host there
        const stack = await freshStack("lab-unreachable", {
            ...labConfig([{ name: "ghost", ip: ghost }], newPasswords()),
            "redis-ha:sshTimeoutSeconds": { value: "3" },
            "redis-ha:allowFewerThanThreeSentinels": { value: "true" },
        });
        try {
            // Before any step: the node, and the ways forward (wait, mark it down, replace it).
            const started = Date.now();
            await assert.rejects(stack.up(), (e: Error) => {
                assert.match(e.message, new RegExp(`ghost \\(${ghost.replace(/\./g, "\\.")}:22\\)`));
                assert.match(e.message, /pulumi config set --path 'redis-ha:nodes\[0\]\.down' true/);
                assert.match(e.message, /README "Day 2"/);
                return true;
            });
            console.log(`    an unreachable node fails the run after ${((Date.now() - started) / 1000).toFixed(1)} s (sshTimeoutSeconds 3)`);
        } finally {
            await stack.destroy().catch(() => undefined);
            await stack.workspace.removeStack(stack.name, { force: true });
        }
    });

    it("refuses to switch an existing stack's runtime, at preview", async () => {
        const stack = await freshStack("lab-runtime-switch", labConfig(hosts, newPasswords()));
        try {
            // Only the guard (and the cluster it belongs to) is needed: the rest plays no part in the refusal.
            const cluster = `urn:pulumi:${stack.name}::redis-ha::redis-ha:index:Cluster::redis-ha`;
            await stack.up({ target: [cluster, `urn:pulumi:${stack.name}::redis-ha::redis-ha:index:Cluster$pulumi-nodejs:dynamic:Resource::redis-ha-runtime`] });
            await stack.setConfig("redis-ha:runtime", { value: "docker" });
            await assert.rejects(stack.preview(), (e: Error) => {
                assert.match(e.message, /redis-ha:runtime changed from packages to docker, which this stack does not do in place: set it back to packages, or migrate as README "Switching runtimes" explains/);
                return true;
            });
        } finally {
            await stack.destroy().catch(() => undefined);
            await stack.workspace.removeStack(stack.name, { force: true });
        }
    });
});
