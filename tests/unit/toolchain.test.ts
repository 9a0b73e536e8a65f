// What toolchain/ changes in the processes `pulumi` starts, checked in child processes of their
// own: the program's closure-parse cache (same provider code as without it, cold, warm, poisoned
// or unreadable), and the dynamic-provider host named in Pulumi.yaml (starts without TypeScript's
// compiler or Arborist, and answers as a provider).
import * as assert from "assert";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..", "..");
const HELPER = "./tests/unit/provider-code.ts";

/** The provider code of every dynamic resource (tests/unit/provider-code.ts), by resource name. */
function providerCode(withProgramStart: boolean, cacheRoot?: string): Record<string, string> {
    const args = withProgramStart
        ? ["-e", `require("./toolchain/program-start"); require(${JSON.stringify(HELPER)})`]
        : ["-r", "ts-node/register/transpile-only", "-e", `require(${JSON.stringify(HELPER)})`];
    const out = execFileSync(process.execPath, args, {
        cwd: ROOT,
        env: { ...process.env, ...(cacheRoot ? { REDIS_HA_PROGRAM_CACHE: cacheRoot } : {}) },
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
    });
    return JSON.parse(out.toString());
}

describe("toolchain: closure-parse cache", function () {
    this.timeout(120_000);
    let dir: string;
    let cacheFile: string;
    let plain: Record<string, string>;
    let cold: Record<string, string>;
    // The cache as the cold run left it.
    let kept: string;

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-cache-"));
        cacheFile = path.join(dir, "redis-ha-closure.json");
        plain = providerCode(false);
        cold = providerCode(true, dir);
        kept = fs.readFileSync(cacheFile, "utf8");
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("gives the same provider code as Pulumi alone, cold and warm, and a warm run writes nothing", () => {
        assert.ok(Object.keys(plain).length >= 20, `only ${Object.keys(plain).length} dynamic resources`);
        assert.deepStrictEqual(cold, plain, "cold");
        assert.ok(Object.keys(JSON.parse(kept)).length >= 50, "the cold run kept fewer than 50 parses");
        assert.deepStrictEqual(providerCode(true, dir), plain, "warm");
        assert.strictEqual(fs.readFileSync(cacheFile, "utf8"), kept, "a run that parsed nothing new rewrote the cache");
    });

    it("is read: poisoned entries change the code", () => {
        const entries = JSON.parse(kept) as Record<string, string>;
        // Every parse says that its function uses no name from outside.
        const captureNothing = (text: string) => {
            const [error, parsed] = JSON.parse(text);
            return JSON.stringify([error, { ...parsed, capturedVariables: { required: { $map: [] }, optional: { $map: [] } } }]);
        };
        fs.writeFileSync(cacheFile, JSON.stringify(Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, captureNothing(v)]))));
        const code = providerCode(true, dir);
        for (const [name, text] of Object.entries(code)) assert.ok(text.length < plain[name].length / 2, `${name}: the poisoned cache was not read`);
        fs.writeFileSync(cacheFile, kept);
    });

    it("parses again when the cache cannot be read, and writes it anew", () => {
        fs.writeFileSync(cacheFile, "{ half a file");
        assert.deepStrictEqual(providerCode(true, dir), plain);
        assert.ok(Object.keys(JSON.parse(fs.readFileSync(cacheFile, "utf8"))).length >= 50);
    });
});

describe("toolchain: the dynamic-provider host", function () {
    this.timeout(60_000);
    const HOST = path.join(ROOT, "toolchain", "dynamic-provider", "pulumi-resource-pulumi-nodejs");

    /**
     * Starts a dynamic-provider process; resolves with its gRPC port once it prints it. `stop` kills it and
     * resolves with everything it wrote to stderr. Stderr goes to a file, not a pipe: a process killed
     * right after printing its port can leave earlier lines unwritten in a full pipe (seen under load),
     * while a file takes each line before the next statement runs.
     */
    function start(command: string, args: string[]): Promise<{ port: number; stop: () => Promise<string> }> {
        return new Promise((resolve, reject) => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-host-"));
            const errFile = path.join(dir, "stderr");
            const errFd = fs.openSync(errFile, "w");
            // The engine's address: the process only connects to it for logs.
            const child = spawn(command, [...args, "127.0.0.1:1"], { cwd: ROOT, env: { ...process.env, NODE_DEBUG: "module" }, stdio: ["ignore", "pipe", errFd] });
            fs.closeSync(errFd);
            const closed = new Promise<void>((done) => child.on("close", () => done()));
            const readErr = () => {
                const err = fs.readFileSync(errFile, "utf8");
                fs.rmSync(dir, { recursive: true, force: true });
                return err;
            };
            let out = "";
            let listening = false;
            const stop = async () => {
                child.kill();
                await closed;
                return readErr();
            };
            child.stdout!.on("data", (d) => {
                out += d;
                const m = /^(\d+)\n/.exec(out);
                if (m && !listening) resolve({ port: Number(m[1]), stop });
                listening ||= m !== null;
            });
            child.on("exit", (code) => listening || reject(new Error(`exited with ${code} before printing its port: ${readErr().slice(-2000)}`)));
        });
    }
    const LOADS = (name: string) => new RegExp(`load "?[^\\n]*node_modules/${name}/`);

    it("is named in Pulumi.yaml and can be run", () => {
        const yaml = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
        assert.match(yaml, /plugins:\n {2}providers:\n {4}- name: pulumi-nodejs\n {6}path: \.\/toolchain\/dynamic-provider\n/);
        assert.ok((fs.statSync(HOST).mode & 0o111) !== 0, "not executable");
    });

    it("starts without TypeScript's compiler or Arborist, which Pulumi's own start loads", async () => {
        const pulumis = await (await start(process.execPath, [path.join(ROOT, "node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js")])).stop();
        assert.match(pulumis, LOADS("typescript"), "the control run loaded no TypeScript: this test proves nothing");
        const ours = await (await start(HOST, [])).stop();
        assert.doesNotMatch(ours, LOADS("typescript"));
        assert.doesNotMatch(ours, LOADS("@npmcli/arborist"));
        assert.match(ours, LOADS("@grpc/grpc-js"), "NODE_DEBUG=module printed nothing");
    });

    it("answers as a provider, with @pulumi/pulumi's version", async () => {
        const grpc = require("@grpc/grpc-js");
        const services = require("@pulumi/pulumi/proto/provider_grpc_pb");
        const empty = require("google-protobuf/google/protobuf/empty_pb");
        const host = await start(HOST, []);
        try {
            const client = new services.ResourceProviderClient(`127.0.0.1:${host.port}`, grpc.credentials.createInsecure());
            const version = await new Promise<string>((resolve, reject) =>
                client.getPluginInfo(new empty.Empty(), (e: Error | null, r: { getVersion(): string }) => (e ? reject(e) : resolve(r.getVersion()))),
            );
            client.close();
            assert.strictEqual(version, require("@pulumi/pulumi/package.json").version);
        } finally {
            await host.stop();
        }
    });
});
