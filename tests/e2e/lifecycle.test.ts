// The whole chain for real: pulumi preview, up, a second up with no changes, and destroy, on
// the lab hosts, checked from the outside with SSH and a real Redis client.
import * as assert from "assert";
import { randomBytes } from "crypto";
import Redis from "ioredis";
import { backendFilesContaining, exportState, freshStack, labConfig, labHosts, onHost, timed } from "./lab";

describe("lab: preview, up, no-op up, destroy", function () {
    const hosts = labHosts();
    const password = randomBytes(24).toString("base64url");
    const times: Record<string, number> = {};
    let stack: Awaited<ReturnType<typeof freshStack>>;
    let output = ""; // everything pulumi printed, to check that no secret shows
    const onOutput = (s: string) => (output += s);

    before(async () => {
        stack = await freshStack("lab-e2e", labConfig(hosts, password));
    });

    after(async () => {
        console.log("    durations (s):", Object.entries(times).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", "));
    });

    it("previews the creation without touching a server", async () => {
        const [preview, secs] = await timed(() => stack.preview({ onOutput }));
        times.preview = secs;
        assert.strictEqual(preview.changeSummary.create, 1 + hosts.length * 3 + 1);
        for (const h of hosts) {
            assert.match(onHost(h.name, "test -e /etc/redis/redis-ha.conf && echo present || echo absent"), /absent/);
        }
    });

    it("creates everything and every Redis answers with the password", async () => {
        const [up, secs] = await timed(() => stack.up({ onOutput }));
        times.up = secs;
        assert.strictEqual(up.summary.result, "succeeded");
        const reports = up.outputs.redisNodes.value as { name: string; role: string; version: string }[];
        assert.deepStrictEqual(reports.map((r) => r.name), hosts.map((h) => h.name));
        const facts = up.outputs.hosts.value as Record<string, { hostname: string; os: string; kernel: string }>;
        for (const h of hosts) {
            assert.strictEqual(facts[h.name].hostname, h.name);
            assert.match(facts[h.name].os, /Debian/);
            const client = new Redis({ host: h.ip, password, lazyConnect: true, retryStrategy: () => null });
            try {
                await client.connect();
                assert.strictEqual(await client.ping(), "PONG");
            } finally {
                client.disconnect();
            }
            const mode = onHost(h.name, "stat -c '%a %U' /etc/redis/redis-ha.conf").trim();
            assert.strictEqual(mode, "640 redis");
        }
    });

    it("keeps secrets out of the state, the output and world-readable files on the hosts", async () => {
        assert.deepStrictEqual(backendFilesContaining(password), [], "the Redis password is in the backend in clear");
        assert.deepStrictEqual(backendFilesContaining("PRIVATE KEY-----"), [], "the SSH key is in the backend in clear");
        assert.ok(!output.includes(password), "pulumi printed the Redis password");
        for (const h of hosts) {
            const readable = onHost(
                h.name,
                `find /etc /var /tmp /run /root /home -xdev -type f -perm -o=r -size -1M 2>/dev/null | xargs -r grep -lF -- '${password}' || true`,
            );
            assert.strictEqual(readable.trim(), "", `world-readable files on ${h.name} hold the password`);
        }
    });

    it("runs nothing on a second up: 0 changes", async () => {
        const before = onHost(hosts[0].name, "systemctl show -p MainPID --value redis-server").trim();
        const [up, secs] = await timed(() => stack.up({ onOutput }));
        times["no-op up"] = secs;
        const changes = Object.entries(up.summary.resourceChanges ?? {}).filter(([op]) => op !== "same");
        assert.deepStrictEqual(changes, []);
        assert.strictEqual(onHost(hosts[0].name, "systemctl show -p MainPID --value redis-server").trim(), before);
        await stack.preview({ expectNoChanges: true });
    });

    it("records the resource graph: redis after facts, the agreement after every redis", async () => {
        const deployment = exportState(stack.name);
        const byName = new Map(deployment.resources.map((r) => [r.urn.split("::").pop()!, r]));
        for (const h of hosts) {
            assert.ok(byName.get(`${h.name}-redis`)!.dependencies!.some((d) => d.endsWith(`::${h.name}-facts`)));
        }
        const agreementDeps = byName.get("agreement")!.dependencies!;
        for (const h of hosts) assert.ok(agreementDeps.some((d) => d.endsWith(`::${h.name}-redis`)));
    });

    it("destroys everything and leaves the hosts on Debian's configuration", async () => {
        const [, secs] = await timed(() => stack.destroy({ onOutput }));
        times.destroy = secs;
        for (const h of hosts) {
            const left = onHost(h.name, "test -e /etc/redis/redis-ha.conf && echo present; grep -c redis-ha /etc/redis/redis.conf || true");
            assert.strictEqual(left.trim(), "0");
        }
        await stack.workspace.removeStack(stack.name);
    });
});
