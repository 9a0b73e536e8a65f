// The program's resources under Pulumi mocks: what is created per server, what each command
// runs, and where secrets go. Fast structure checks; tests/e2e proves the same for real.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, any>;
}
const recorded: Recorded[] = [];

pulumi.runtime.setMocks(
    {
        newResource(args) {
            recorded.push({ type: args.type, name: args.name, inputs: args.inputs });
            const state: Record<string, unknown> = { ...args.inputs };
            if (args.name.endsWith("-facts")) {
                state.stdout = JSON.stringify({ hostname: args.name, kernel: "6.1", os: "Debian GNU/Linux 12", cpus: 2, memoryMiB: 2048 });
            } else if (args.name.endsWith("-redis")) {
                state.stdout = JSON.stringify({ installed: true, restarted: true, version: "7.0.15" });
            } else if (args.name === "agreement") {
                state.reports = [];
            }
            return { id: `${args.name}-id`, state };
        },
        call: () => {
            throw new Error("the program makes no provider calls");
        },
    },
    "redis-ha",
    "unit",
    false,
);

const PASSWORD = "unit-test-password-0123456789";
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
pulumi.runtime.setAllConfig(
    {
        "redis-ha:nodes": JSON.stringify([
            { name: "redis-1", host: "192.0.2.7" },
            { name: "redis-2", host: "192.0.2.8", privateIp: "10.0.0.8" },
            { name: "redis-3", host: "192.0.2.9" },
        ]),
        "redis-ha:sshPrivateKey": KEY,
        "redis-ha:adminPassword": PASSWORD,
    },
    ["redis-ha:sshPrivateKey", "redis-ha:adminPassword"],
);

// Mocks hand over secret inputs wrapped with Pulumi's secret signature.
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const isSecret = (v: any) => v !== null && typeof v === "object" && SECRET_SIG in v;
const plain = (v: any): any => (isSecret(v) ? plain(v.value) : v);

const asset = (name: string) => fs.readFileSync(path.join(__dirname, "..", "..", "assets", name), "utf8");
const outputOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));

describe("program (mocks)", function () {
    let program: typeof import("../../index");

    before(async () => {
        program = await import("../../index");
        await outputOf(program.redisNodes); // every resource has been registered by then
    });

    const named = (n: string) => {
        const r = recorded.find((x) => x.name === n);
        assert.ok(r, `no resource named ${n}; have ${recorded.map((x) => x.name).join(", ")}`);
        return r;
    };

    it("creates a Server with a facts and a redis command per node, and one agreement", () => {
        const names = recorded.map((r) => `${r.type}::${r.name}`).sort();
        assert.deepStrictEqual(names, [
            "pulumi-nodejs:dynamic:Resource::agreement",
            ...["redis-1", "redis-2", "redis-3"].flatMap((n) => [`pulumi-nodejs:dynamic:Resource::${n}-facts`, `pulumi-nodejs:dynamic:Resource::${n}-redis`]),
            ...["redis-1", "redis-2", "redis-3"].map((n) => `redis-ha:index:Server::${n}`),
        ].sort());
    });

    it("runs the scripts from assets/ and binds Redis to each node's private address", () => {
        const redis2 = named("redis-2-redis").inputs;
        assert.strictEqual(named("redis-1-facts").inputs.create, asset("host-facts.sh"));
        assert.strictEqual(redis2.create, asset("redis-server.sh"));
        assert.strictEqual(redis2.delete, asset("redis-server-remove.sh"));
        assert.deepStrictEqual(redis2.environment, { REDIS_BIND_IP: "10.0.0.8", REDIS_PORT: "6379" });
        assert.deepStrictEqual(plain(redis2.connection).host, "192.0.2.8");
        assert.deepStrictEqual(named("agreement").inputs.nodes.map((n: { host: string }) => n.host), ["192.0.2.7", "10.0.0.8", "192.0.2.9"]);
    });

    it("passes the password on stdin only, as a secret, never in a script or the environment", () => {
        for (const r of recorded.filter((x) => x.name.endsWith("-redis"))) {
            assert.ok(isSecret(r.inputs.stdin) && isSecret(r.inputs.connection), `${r.name}: stdin or connection is not secret`);
            assert.strictEqual(plain(r.inputs.stdin), `${PASSWORD}\n`);
            assert.ok(!r.inputs.create.includes(PASSWORD) && !JSON.stringify(r.inputs.environment).includes(PASSWORD));
        }
        for (const r of recorded.filter((x) => x.name.endsWith("-facts"))) {
            assert.strictEqual(r.inputs.stdin, undefined);
        }
    });

    it("serializes the dynamic providers without dragging in module state", () => {
        for (const r of recorded.filter((x) => x.type === "pulumi-nodejs:dynamic:Resource")) {
            const code: string = r.inputs.__provider;
            assert.ok(code.length > 0 && code.length < 100_000, `${r.name}: provider code is ${code.length} bytes`);
            assert.ok(!code.includes(PASSWORD) && !code.includes("PRIVATE KEY"), `${r.name}: a secret was captured in the provider code`);
            assert.ok(!/require\("zod"\)/.test(code), `${r.name}: the provider captured zod`);
        }
    });

    it("exports each host's facts", async () => {
        const hosts = await outputOf(pulumi.output(program.hosts));
        assert.deepStrictEqual(Object.keys(hosts), ["redis-1", "redis-2", "redis-3"]);
        assert.strictEqual(hosts["redis-1"].os, "Debian GNU/Linux 12");
    });
});
