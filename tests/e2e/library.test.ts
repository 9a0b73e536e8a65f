// redis-ha as a library: `npm pack` builds the component (JavaScript and type declarations), a
// separate Pulumi program (examples/library) installs the tarball with npm and deploys two
// clusters, `cache` and `queue`, on six lab hosts with their own ports; both agree and serve
// clients from their outputs; destroy removes both.
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import Redis from "ioredis";
import { labHosts } from "../../lab/hosts";
import { labKey, newPasswords, ROOT, wipeRedisData } from "./lab";

const LAB = path.join(ROOT, "lab", "lab.sh");
const SIX = { ...process.env, LAB_HOSTS: "6" };

describe("lab library: two clusters from one program that installs redis-ha from npm pack", function () {
    let dir = "";
    let tarball = "";
    let stack: Stack;
    const extraHosts = ["rha4", "rha5", "rha6"];

    before(async () => {
        // Three more hosts beside the usual three (lab.sh down stops them all).
        execFileSync("bash", [LAB, "up"], { env: SIX, stdio: "ignore" });
        const servers = labHosts(6);
        wipeRedisData(servers.map((s) => s.ip));
        tarball = path.join(ROOT, execFileSync("npm", ["pack", "--silent"], { cwd: ROOT, encoding: "utf8" }).trim().split("\n").pop()!);
        const listed = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" });
        assert.match(listed, /^package\/dist\/components\/index\.d\.ts$/m, "the package has no type declarations");
        assert.match(listed, /^package\/dist\/assets\/lib\/common\.sh$/m, "the package has no server scripts");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-library-"));
        for (const f of ["index.ts", "Pulumi.yaml", "tsconfig.json"]) fs.copyFileSync(path.join(ROOT, "examples", "library", f), path.join(dir, f));
        const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "examples", "library", "package.json"), "utf8"));
        pkg.dependencies["redis-ha"] = `file:${tarball}`;
        fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify(pkg, null, 2));
        execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], { cwd: dir, stdio: "ignore" });
        const ws = await LocalWorkspace.create({ workDir: dir });
        try {
            await ws.removeStack("lab-library", { force: true });
        } catch {
            // it did not exist
        }
        stack = await Stack.create("lab-library", ws);
        const secrets: Record<string, { value: string; secret: boolean }> = {};
        for (const cluster of ["cache", "queue"]) {
            const p = newPasswords();
            for (const [user, key] of [["Admin", "adminPassword"], ["Replication", "replicationPassword"], ["SentinelAuth", "sentinelAuthPassword"], ["Sentinel", "sentinelPassword"], ["App", "appPassword"]] as const) {
                secrets[`redis-ha-library-example:${cluster}${user}Password`] = { value: p[key], secret: true };
            }
        }
        await stack.setAllConfig({
            "redis-ha-library-example:servers": { value: JSON.stringify(servers) },
            "redis-ha-library-example:sshPrivateKey": { value: labKey(), secret: true },
            ...secrets,
        });
    });

    after(() => {
        for (const h of extraHosts) execFileSync("bash", [LAB, "poweroff", h, "--hard"], { env: SIX, stdio: "ignore" });
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
        if (tarball) fs.rmSync(tarball, { force: true });
    });

    it("deploys both clusters, each agreeing on its own master and serving its own clients", async () => {
        const up = await stack.up();
        assert.strictEqual(up.summary.result, "succeeded");
        const out = Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value]));
        assert.strictEqual(out.cacheMaster.port, 6380);
        assert.strictEqual(out.queueMaster.port, 6381);
        assert.match(out.cacheMaster.name, /^cache-rha[123]$/);
        assert.match(out.queueMaster.name, /^queue-rha[456]$/);
        for (const [name, client] of [["cache", out.cacheClient], ["queue", out.queueClient]]) {
            assert.strictEqual(client.name, name);
            const redis = new Redis({ ...client, lazyConnect: true, maxRetriesPerRequest: 1 });
            try {
                await redis.connect();
                await redis.set("library:who", name);
                assert.strictEqual(await redis.get("library:who"), name);
            } finally {
                redis.disconnect();
            }
        }
        const again = await stack.up();
        assert.deepStrictEqual(Object.keys(again.summary.resourceChanges ?? {}), ["same"], "a second up changed something");
    });

    it("destroys both clusters", async () => {
        await stack.destroy();
        await stack.workspace.removeStack(stack.name);
    });
});
