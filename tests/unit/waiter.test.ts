// The waiter of SentinelAgreement and VipCheck: deadline, progress lines, and a provider that
// keeps passwords out of its outputs. The providers run here as the engine runs them: from their
// serialized code alone, so anything they use but did not capture fails.
import * as assert from "assert";
import Module = require("module");
import * as net from "net";
import * as path from "path";
import type * as pulumi from "@pulumi/pulumi";
import { MasterElection } from "../../components/master-election";
import { SentinelAgreement } from "../../components/sentinel-agreement";
import { VipCheck } from "../../components/vip-check";
import { waitingProvider, waitUntil } from "../../components/waiter";
import { freePort } from "./loopback";
import { outputOf, recorded } from "./mocks";

const ROOT = path.resolve(__dirname, "..", "..");

/** Runs fn with stderr (where progress lines go without an engine) captured; returns its result and the lines. */
async function capturingStderr<T>(fn: () => Promise<T>): Promise<[T | Error, string[]]> {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => lines.push(...String(chunk).split("\n").filter(Boolean)) > 0) as typeof process.stderr.write;
    try {
        return [await fn().catch((e: Error) => e), lines];
    } finally {
        process.stderr.write = write;
    }
}

/** A dynamic resource's provider as the engine gets it: deserialized from its __provider input, in a module of its own. */
async function serializedProvider(resource: pulumi.CustomResource, name: string): Promise<pulumi.dynamic.ResourceProvider> {
    await outputOf(resource.urn);
    const code = recorded.find((r) => r.name === name)?.inputs.__provider;
    assert.ok(typeof code === "string" && code.length > 0, `${name} has no serialized provider`);
    const m = new Module(path.join(ROOT, `${name}.provider.js`)) as Module & { _compile(code: string, file: string): void };
    m.filename = m.id;
    m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(ROOT);
    m._compile(code, m.filename);
    return m.exports.handler();
}

/**
 * A stand-in for Redis behind a VIP: takes any AUTH (or refuses every one with `authError`) and
 * answers ROLE with `role`; listens after `lateMs`, as a Redis still starting.
 */
async function fakeRedis(role: string, lateMs = 0, authError?: string): Promise<{ port: number; close: () => void }> {
    const port = await freePort();
    const server = net.createServer((s) => {
        s.on("error", () => undefined);
        s.on("data", (d) => {
            for (const [, name] of d.toString().matchAll(/\*\d+\r\n\$\d+\r\n([^\r]*)\r\n/g)) {
                const command = name.toUpperCase();
                if (authError && (command === "AUTH" || command === "ROLE")) s.write(`-${command === "AUTH" ? authError : "NOAUTH Authentication required."}\r\n`);
                else s.write(command === "ROLE" ? `*1\r\n$${role.length}\r\n${role}\r\n` : "+OK\r\n");
            }
        });
    });
    const listening = new Promise<void>((resolve) => setTimeout(() => server.listen(port, "127.0.0.1", resolve), lateMs));
    if (lateMs === 0) await listening;
    return { port, close: () => void listening.then(() => server.close()) };
}

/** MasterElection's serialized provider for one node, n1, at `port`, with no sentinel running; and its arguments. */
async function electionProvider(name: string, port: number) {
    const sentinels = [{ host: "127.0.0.1", port: await freePort() }];
    const nodes = [{ name: "n1", host: "127.0.0.1", port, runId: "r1", stdout: '{"initialized":false}' }];
    const args = { masterName: "mymaster", sentinels, nodes, initialMaster: "n1", adminPassword: "admin-0123456789abcdef" };
    return { provider: await serializedProvider(new MasterElection(name, args), name), args };
}

describe("waiter", function () {
    it("looks until a look is done, and says what it found and after how long", async () => {
        let looks = 0;
        const [result, lines] = await capturingStderr(() =>
            waitUntil({
                what: "test wait",
                failure: "it did not happen",
                timeoutSeconds: 10,
                look: async () => (++looks < 3 ? { done: false, why: `look ${looks}` } : { done: true, found: { looks }, says: "it happened" }),
            }),
        );
        assert.ok(!(result instanceof Error), String(result));
        assert.strictEqual(result.looks, 3);
        assert.ok(result.waitedSeconds >= 1 && result.waitedSeconds < 3, `waited ${result.waitedSeconds} s`);
        assert.deepStrictEqual(lines.slice(0, 2), ["test wait: waiting: look 1", "test wait: waiting: look 2"]);
        assert.match(lines[2], /^test wait: it happened \(after 1(\.\d)? s\)$/);
    });

    it("fails once the time is up, with the last reason", async () => {
        const [result] = await capturingStderr(() =>
            waitUntil({ what: "test wait", failure: "it did not happen", timeoutSeconds: 0, look: async () => ({ done: false, why: "not yet" }) }),
        );
        assert.ok(result instanceof Error);
        assert.strictEqual(result.message, "it did not happen within 0 s: not yet");
    });

    it("waits again when a compared input changes, not for a new password, and keeps passwords out of the outputs", async () => {
        let waits = 0;
        const provider = waitingProvider({
            id: (i: { target: string; password: string; n: number }) => `wait-${i.target}`,
            compared: ["target", "n"],
            secrets: ["password"],
            wait: async () => ({ waits: ++waits }),
        });
        const inputs = { target: "t", password: "secret-0123456789", n: 1 };
        const created = await provider.create!(inputs);
        assert.deepStrictEqual(created, { id: "wait-t", outs: { target: "t", n: 1, waits: 1 } });
        assert.deepStrictEqual(await provider.diff!("wait-t", created.outs, { ...inputs, password: "other-0123456789" }), { changes: false });
        assert.deepStrictEqual(await provider.diff!("wait-t", created.outs, { ...inputs, n: 2 }), { changes: true });
        assert.deepStrictEqual(await provider.update!("wait-t", created.outs, { ...inputs, n: 2 }), { outs: { target: "t", n: 2, waits: 2 } });
    });

    it("VipCheck's provider, from its serialized code alone, waits for both VIPs and keeps the password out", async () => {
        const [write, read] = await Promise.all([fakeRedis("master"), fakeRedis("slave")]);
        try {
            const endpoints = { write: { host: "127.0.0.1", port: write.port }, read: { host: "127.0.0.1", port: read.port } };
            const check = new VipCheck("waiter-vip-check", { ...endpoints, appPassword: "app-0123456789abcdef", timeoutSeconds: 10, revisions: ["r1"] });
            const provider = await serializedProvider(check, "waiter-vip-check");
            const inputs = { ...endpoints, appPassword: "app-0123456789abcdef", timeoutSeconds: 10, revisions: ["r1"], providerVersion: "1" };
            const [created, lines] = await capturingStderr(() => provider.create!(inputs));
            assert.ok(!(created instanceof Error), String(created));
            assert.strictEqual(created.id, "vip-check-127.0.0.1");
            const { waitedSeconds, ...outs } = created.outs;
            assert.deepStrictEqual(outs, { ...endpoints, timeoutSeconds: 10, revisions: ["r1"], providerVersion: "1", writeRole: "master", readRole: "slave" });
            assert.strictEqual(typeof waitedSeconds, "number");
            assert.match(lines.at(-1) ?? "", /^vip check: write VIP reaches the master, read VIP a replica \(after [\d.]+ s\)$/);
            assert.deepStrictEqual(await provider.diff!(created.id, created.outs, { ...inputs, appPassword: "new-0123456789abcdef" }), { changes: false });
            assert.deepStrictEqual(await provider.diff!(created.id, created.outs, { ...inputs, revisions: ["r2"] }), { changes: true });
        } finally {
            write.close();
            read.close();
        }
    });

    it("SentinelAgreement's provider, from its serialized code alone, names the sentinel that does not answer", async () => {
        const port = await freePort(); // nothing listens there
        const sentinels = [{ name: "s1", host: "127.0.0.1", port }];
        const redis = [{ name: "s1", host: "127.0.0.1", port }];
        const agreement = new SentinelAgreement("waiter-agreement", { masterName: "mymaster", sentinels, redis, adminPassword: "admin-0123456789abcdef", timeoutSeconds: 0, revisions: [] });
        const provider = await serializedProvider(agreement, "waiter-agreement");
        const inputs = { masterName: "mymaster", sentinels, redis, adminPassword: "admin-0123456789abcdef", timeoutSeconds: 0, revisions: [], providerVersion: "2" };
        const [result] = await capturingStderr(() => provider.create!(inputs));
        assert.ok(result instanceof Error);
        assert.match(result.message, new RegExp(`^the sentinels did not agree within 0 s: sentinel s1 \\(127\\.0\\.0\\.1:${port}\\) does not answer`));
        assert.deepStrictEqual(await provider.diff!("mymaster-agreement", { ...inputs, adminPassword: undefined }, { ...inputs, adminPassword: "new-0123456789abcdef" }), { changes: false });
    });

    it("MasterElection's provider, from its serialized code alone, waits for a Redis that does not listen yet (a container just started)", async () => {
        const node = await fakeRedis("master", 1500);
        try {
            const { provider, args } = await electionProvider("waiter-election", node.port);
            const [created, lines] = await capturingStderr(() => provider.create!({ ...args, providerVersion: "1" }));
            assert.ok(!(created instanceof Error), String(created));
            assert.deepStrictEqual([created.outs.master, created.outs.joined, created.outs.adminPassword], ["n1", [], undefined]);
            assert.match(lines.join("\n"), new RegExp(`master election: waiting: no answer from n1 \\(127\\.0\\.0\\.1:${node.port}\\)`));
            assert.match(lines.join("\n"), /master election: all 1 nodes answer \(after [1-9][\d.]* s\)/);
        } finally {
            node.close();
        }
    });

    it("MasterElection's provider fails at once, naming the node, when a Redis refuses the admin password (waiting would not help)", async () => {
        const node = await fakeRedis("master", 0, "WRONGPASS invalid username-password pair or user is disabled.");
        try {
            const { provider, args } = await electionProvider("waiter-election-refused", node.port);
            // Mocha's 20 s limit fails this if the election waits its 60 s instead.
            const [created, lines] = await capturingStderr(() => provider.create!({ ...args, providerVersion: "1" }));
            assert.ok(created instanceof Error, "the election went on with a refused password");
            assert.match(created.message, new RegExp(`n1 \\(127\\.0\\.0\\.1:${node.port}\\) refuses the admin user: (WRONGPASS|NOAUTH)`));
            assert.ok(!lines.some((l) => /waiting/.test(l)), `it waited: ${lines.join("; ")}`);
        } finally {
            node.close();
        }
    });
});
