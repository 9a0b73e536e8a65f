// Host keys: the fingerprint as ssh-keygen prints it, the diffs, and, against a real sshd on
// 127.0.0.1 (tests/unit/local-sshd.ts), that HostKey records or checks the key and that a
// command refuses a server presenting another key before sending it anything.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { hostKeyOf, hostKeyProvider, nodeSsh, type HostKeyInputs, type HostKeyOutputs } from "../../components/host-key";
import { script } from "../../components/assets";
import { connectionInputs, packScript, remoteCommandProvider, unpackScript } from "../../components/remote-command";
import { sshLease, sshRun } from "../../components/ssh";
import { KEY } from "./fixtures";
import { keygen, LocalSshd, sshKeygenFingerprint } from "./local-sshd";
import { isSecret, outputOf, plain, recorded } from "./mocks";

const FINGERPRINT = `SHA256:${"F".repeat(43)}`;

type CommandInputs = Parameters<NonNullable<typeof remoteCommandProvider.create>>[0];
type CommandOutputs = Parameters<NonNullable<typeof remoteCommandProvider.delete>>[1];

/** The public key blob of a `.pub` file, as ssh2's hostVerifier receives it. */
/** A command's update step, returning its outputs. */
const update = (olds: CommandOutputs, news: CommandInputs) => remoteCommandProvider.update!("id", olds, news).then((r) => r.outs!);

const blobOf = (pubFile: string) => Buffer.from(fs.readFileSync(pubFile, "utf8").split(/\s+/)[1], "base64");

describe("host keys", function () {
    describe("fingerprint", () => {
        let dir: string;
        before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-keys-"))));
        after(() => fs.rmSync(dir, { recursive: true, force: true }));

        for (const type of ["ed25519", "ecdsa", "rsa"] as const) {
            it(`is what ssh-keygen -lf prints, for an ${type} key`, () => {
                const key = keygen(dir, type, type);
                const seen = hostKeyOf(blobOf(`${key}.pub`));
                assert.strictEqual(seen.fingerprint, sshKeygenFingerprint(`${key}.pub`));
                assert.match(seen.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
                assert.strictEqual(seen.keyType, fs.readFileSync(`${key}.pub`, "utf8").split(" ")[0]);
            });
        }
    });

    describe("diffs (no connection)", () => {
        const FP_A = `SHA256:${"A".repeat(43)}`;
        const FP_B = `SHA256:${"B".repeat(43)}`;
        const connection = { host: "127.0.0.1", port: 1, user: "root", privateKey: "k", dialTimeoutSeconds: 1 };
        const command = (extra: Partial<CommandOutputs> = {}): CommandOutputs => ({
            connection,
            create: "echo hi",
            providerVersion: "1",
            stdout: "hi",
            stderr: "",
            runId: "run-1",
            ...extra,
        });

        it("a command records a first host key by an update that runs nothing", async () => {
            const olds = command();
            const news: CommandInputs = { ...command(), hostKey: FP_A, hostKeyResource: "urn:x" };
            const diff = await remoteCommandProvider.diff!("id", olds, news);
            assert.deepStrictEqual([diff.changes, diff.replaces], [true, []]);
            // Port 1 on loopback: any connection attempt would fail, so this proves none is made.
            const outs = await update(olds, news);
            assert.strictEqual(outs.runId, "run-1");
            assert.strictEqual(outs.hostKey, FP_A);
            assert.strictEqual(outs.stdout, "hi");
            // And when it is no longer given (unwired), likewise.
            const dropped = await update({ ...olds, hostKey: FP_A }, command());
            assert.deepStrictEqual([dropped.runId, dropped.hostKey], ["run-1", undefined]);
        });

        it("scripts compare by their text, packed (new inputs) or plain (a state from before packing)", async () => {
            const olds = command({ create: "echo hi", delete: "echo bye" });
            const packed = { ...olds, create: packScript("echo hi"), delete: packScript("echo bye") };
            const diff = await remoteCommandProvider.diff!("id", olds, packed);
            assert.deepStrictEqual([diff.changes, diff.replaces], [false, []], "an upgraded deployer runs nothing again");
            for (const before of [olds, packed]) {
                const changed = await remoteCommandProvider.diff!("id", before, { ...packed, delete: packScript("echo bye!") });
                assert.deepStrictEqual([changed.changes, changed.replaces], [true, []]);
            }
        });

        it("a packed script is the same text in under 40 % of the bytes, packed alike every run", () => {
            const text = script("redis-node.sh", { DATA_SURVEY: script("data-survey.sh"), STOP_HOOK: script("hooks/redis-stop.sh") }, { STEP: "create" });
            const packed = packScript(text);
            assert.strictEqual(unpackScript(packed), text);
            assert.ok(packed.length < 0.4 * text.length, `${packed.length} of ${text.length} bytes`);
            assert.strictEqual(packScript(text), packed);
            assert.strictEqual(unpackScript("echo plain"), "echo plain");
        });

        it("a command runs again when the recorded host key changes, and not at all when it stays", async () => {
            const olds = command({ hostKey: FP_A });
            const changed = await remoteCommandProvider.diff!("id", olds, { ...olds, hostKey: FP_B });
            assert.deepStrictEqual([changed.changes, changed.replaces], [true, []]);
            // It tries to run the script (and fails on the made-up private key).
            await assert.rejects(update(olds, { ...olds, hostKey: FP_B }), /root@127\.0\.0\.1:1 refused our key/);
            assert.strictEqual((await remoteCommandProvider.diff!("id", olds, { ...olds })).changes, false);
        });

        it("a rotated SSH key is recorded without running anything", async () => {
            const olds = command({ hostKey: FP_A });
            const news = { ...olds, connection: { ...connection, privateKey: "k2" } };
            assert.strictEqual((await remoteCommandProvider.diff!("id", olds, news)).changes, true);
            const outs = await update(olds, news);
            assert.deepStrictEqual([outs.runId, outs.connection.privateKey], ["run-1", "k2"]);
        });

        const recorded: HostKeyOutputs = { host: "127.0.0.1", port: 1, fingerprint: FP_A, keyType: "ssh-ed25519", providerVersion: "1" };
        const hostKeyInputs = (extra: Partial<HostKeyInputs> = {}): HostKeyInputs => ({ connection, providerVersion: "1", ...extra });
        const hostKeyDiff = (news: HostKeyInputs) => hostKeyProvider.diff!("id", recorded, news).then((d) => [d.changes, d.replaces]);

        it("a HostKey looks again only for another address or another pin", async () => {
            assert.deepStrictEqual(await hostKeyDiff(hostKeyInputs()), [false, []]);
            assert.deepStrictEqual(await hostKeyDiff(hostKeyInputs({ pinned: FP_A })), [false, []], "a pin equal to the recorded key");
            assert.deepStrictEqual(await hostKeyDiff(hostKeyInputs({ pinned: FP_B })), [true, ["pinned"]]);
            assert.deepStrictEqual(await hostKeyDiff(hostKeyInputs({ connection: { ...connection, port: 2 } })), [true, ["connection"]]);
            assert.deepStrictEqual(await hostKeyDiff(hostKeyInputs({ connection: { ...connection, privateKey: "k2" } })), [false, []]);
        });

        it("a HostKey refuses a pin that is not a fingerprint", async () => {
            const { failures } = await hostKeyProvider.check!(hostKeyInputs(), hostKeyInputs({ pinned: "SHA256:abc=" }));
            assert.deepStrictEqual(
                failures?.map((f) => f.property),
                ["pinned"],
            );
        });
    });

    describe("wiring (mocks)", () => {
        it("nodeSsh makes <node>-host-key and a connection that carries its fingerprint and URN", async () => {
            const { hostKey, connection } = nodeSsh({ name: "hk-1", host: "192.0.2.7", sshPort: 2222, sshUser: "deploy", hostKey: FINGERPRINT }, KEY, 30);
            const urn = await outputOf(hostKey.urn);
            assert.match(urn, /::hk-1-host-key$/);
            const r = recorded.find((x) => x.name === "hk-1-host-key")!;
            assert.strictEqual(r.inputs.pinned, FINGERPRINT);
            assert.ok(isSecret(r.inputs.connection), "the HostKey's connection (with the SSH key) is not secret");
            assert.deepStrictEqual(plain(r.inputs.connection), { host: "192.0.2.7", port: 2222, user: "deploy", privateKey: KEY, dialTimeoutSeconds: 30 });
            assert.strictEqual(await outputOf(pulumi.output(connection.hostKeyResource!)), urn);
            assert.ok(connection.hostKey, "no hostKey in the connection");
        });

        it("a command's connection stays known while its host key is not", async () => {
            const never = new Promise<string>(() => undefined); // a HostKey still to be created
            const inputs = connectionInputs({ host: "h", privateKey: KEY, hostKey: never });
            assert.deepStrictEqual(await outputOf(inputs.connection), { host: "h", privateKey: KEY });
            assert.strictEqual(inputs.hostKey, never);
        });
    });

    describe("against a local sshd", function () {
        this.timeout(60000);
        let sshd: LocalSshd;
        let fpA: string; // ed25519, presented first
        let fpC: string; // ecdsa, presented when asked for
        const target = () => ({ host: "127.0.0.1", port: sshd.port, user: "root", privateKey: sshd.clientKey, dialTimeoutSeconds: 30 });

        before(async function () {
            const why = LocalSshd.unavailable();
            if (why) {
                console.log(`    (skipped: no local sshd: ${why})`);
                return this.skip();
            }
            sshd = await LocalSshd.start((dir) => [keygen(dir, "host_a", "ed25519"), keygen(dir, "host_c", "ecdsa")]);
            fpA = sshKeygenFingerprint(path.join(sshd.dir, "host_a.pub"));
            fpC = sshKeygenFingerprint(path.join(sshd.dir, "host_c.pub"));
        });
        after(async () => sshd && (await sshd.stop()));

        const create = (inputs: HostKeyInputs) => hostKeyProvider.create!(inputs).then((r) => r.outs as HostKeyOutputs);

        it("HostKey records the key the server presents", async () => {
            const outs = await create({ connection: target(), providerVersion: "1" });
            assert.deepStrictEqual([outs.fingerprint, outs.keyType, outs.host, outs.port], [fpA, "ssh-ed25519", "127.0.0.1", sshd.port]);
            assert.ok(!JSON.stringify(outs).includes("PRIVATE KEY"), "the private key is not in the outputs");
        });

        it("HostKey accepts a pin of the server's other key type, and commands then check that key", async () => {
            const outs = await create({ connection: target(), pinned: fpC, providerVersion: "1" });
            assert.deepStrictEqual([outs.fingerprint, outs.keyType], [fpC, "ecdsa-sha2-nistp256"]);
            assert.strictEqual((await sshRun({ ...target(), hostKey: fpC }, "echo ok", undefined, undefined)).stdout, "ok");
        });

        it("a command runs with the recorded key, with its stdin", async () => {
            const out = await sshRun({ ...target(), hostKey: fpA }, "echo ok; cat", undefined, "from stdin");
            assert.strictEqual(out.stdout, "ok\nfrom stdin");
        });

        it("HostKey refuses a wrong pin before logging in", async () => {
            const wrong = sshKeygenFingerprint(`${keygen(sshd.dir, "stranger", "ed25519")}.pub`);
            const mark = sshd.log().length;
            const started = Date.now();
            await assert.rejects(create({ connection: target(), pinned: wrong, providerVersion: "1" }), (e: Error) => {
                assert.match(e.message, new RegExp(`root@127\\.0\\.0\\.1:${sshd.port} does not present the host key pinned`));
                for (const s of [wrong, `${fpA} (ssh-ed25519)`, `${fpC} (ecdsa-sha2-nistp256)`, "nodes[<i>].hostKey"]) assert.ok(e.message.includes(s), `${s} in:\n${e.message}`);
                return true;
            });
            assert.ok(Date.now() - started < 5000, "no retries");
            await new Promise((r) => setTimeout(r, 300)); // let sshd log the closed connections
            assert.doesNotMatch(sshd.log(mark), /userauth|Accepted publickey/);
        });

        it("the providers survive Pulumi's closure serialization (as in the state)", async () => {
            const load = async (provider: object) => {
                const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
                // As the dynamic provider host loads it, with this project's node_modules.
                const requireFromString = require("require-from-string") as (code: string, file: string) => { handler: () => any };
                return requireFromString(text, path.join(__dirname, "serialized-provider.js")).handler();
            };
            const hostKeys = await load(hostKeyProvider);
            const outs = (await hostKeys.create({ connection: target(), providerVersion: "1" })).outs as HostKeyOutputs;
            assert.strictEqual(outs.keyType, "ssh-ed25519");
            const commands = await load(remoteCommandProvider);
            const { outs: ran } = await commands.create({ connection: target(), hostKey: outs.fingerprint, create: "echo ok", providerVersion: "1" });
            assert.strictEqual(ran.stdout, "ok");
            const { outs: unpacked } = await commands.create({ connection: target(), hostKey: outs.fingerprint, create: packScript("echo packed"), providerVersion: "1" });
            assert.strictEqual(unpacked.stdout, "packed");
            const stranger = `SHA256:${"x".repeat(43)}`;
            await assert.rejects(commands.create({ connection: target(), hostKey: stranger, create: "echo ok", providerVersion: "1" }), /changed: refusing/);
        });

        describe("connections kept between steps", () => {
            const logins = (from: number) => (sshd.log(from).match(/Accepted publickey/g) ?? []).length;
            const counter = () => path.join(sshd.dir, "runs");
            const count = () => `echo x >> ${counter()}; echo ok`;
            const runs = () => fs.readFileSync(counter(), "utf8").split("\n").filter(Boolean).length;
            // Lets sshd log, then makes the next steps connect anew (sessions end with sshd).
            const settle = () => new Promise((r) => setTimeout(r, 300));
            beforeEach(async () => {
                await sshd.restart([path.join(sshd.dir, "host_a"), path.join(sshd.dir, "host_c")]);
                fs.rmSync(counter(), { force: true });
            });

            it("a node's HostKey and the steps after it, one after another and side by side, log in once", async () => {
                const mark = sshd.log().length;
                const outs = await create({ connection: target(), providerVersion: "1" });
                const t = { ...target(), hostKey: outs.fingerprint };
                await Promise.all([1, 2, 3].map(() => sshRun(t, count(), undefined, undefined)));
                assert.strictEqual((await sshRun(t, count(), undefined, undefined)).stdout, "ok");
                await assert.rejects(sshRun(t, "exit 3", undefined, undefined), /script failed \(exit 3\)/);
                assert.strictEqual((await sshRun(t, count(), undefined, undefined)).stdout, "ok", "a failed script leaves the connection usable");
                await settle();
                assert.strictEqual(runs(), 5);
                assert.strictEqual(logins(mark), 1);
            });

            it("not for another expected host key or another private key (this one not authorized: refused, not let in on a kept connection)", async () => {
                const mark = sshd.log().length;
                const other = fs.readFileSync(keygen(sshd.dir, `other-${Date.now()}`, "ed25519"), "utf8");
                await sshRun({ ...target(), hostKey: fpA }, count(), undefined, undefined);
                await sshRun({ ...target(), hostKey: fpC }, count(), undefined, undefined);
                await assert.rejects(sshRun({ ...target(), privateKey: other, hostKey: fpA }, count(), undefined, undefined), /refused our key/);
                await settle();
                assert.strictEqual(runs(), 2);
                assert.strictEqual(logins(mark), 2);
            });

            it("a kept connection that is closing is replaced, and the script runs once", async () => {
                const t = { ...target(), hostKey: fpA };
                await sshRun(t, count(), undefined, undefined);
                const mark = sshd.log().length;
                // The connection ends while still in the pool, as when a server goes away between steps.
                const lease = await sshLease(t);
                assert.ok(lease.kept);
                lease.client.end();
                lease.release();
                assert.strictEqual((await sshRun(t, count(), undefined, undefined)).stdout, "ok");
                await settle();
                assert.strictEqual(runs(), 2);
                assert.strictEqual(logins(mark), 1, "one new login");
            });

            it("a server that restarted between steps gets a new connection", async () => {
                const t = { ...target(), hostKey: fpA };
                await sshRun(t, count(), undefined, undefined);
                await sshd.restart([path.join(sshd.dir, "host_a"), path.join(sshd.dir, "host_c")]);
                const mark = sshd.log().length;
                assert.strictEqual((await sshRun(t, count(), undefined, undefined)).stdout, "ok");
                await settle();
                assert.strictEqual(runs(), 2);
                assert.strictEqual(logins(mark), 1);
            });

            it("an unused connection closes after 5 s", async function () {
                this.timeout(20000);
                await sshRun({ ...target(), hostKey: fpA }, count(), undefined, undefined);
                const mark = sshd.log().length;
                await new Promise((r) => setTimeout(r, 4000));
                assert.doesNotMatch(sshd.log(mark), /Disconnected from|Received disconnect/);
                await new Promise((r) => setTimeout(r, 1500));
                assert.match(sshd.log(mark), /Received disconnect from 127\.0\.0\.1/);
            });
        });

        describe("after the server changed its host keys", () => {
            let runDir: string;
            let fpB: string;
            const canary = "stdin-canary-0123456789";
            const inputs = (hostKey?: string): CommandOutputs => ({
                connection: target(),
                hostKey,
                hostKeyResource: hostKey && "urn:pulumi:prod::redis-ha::pulumi-nodejs:dynamic:Resource::redis-1-host-key",
                create: `touch ${runDir}/created; cat > ${runDir}/stdin`,
                delete: `touch ${runDir}/deleted; cat > ${runDir}/stdin`,
                stdin: canary,
                providerVersion: "1",
                stdout: "",
                stderr: "",
                runId: "run-1",
            });

            before(async () => {
                runDir = fs.mkdtempSync(path.join(sshd.dir, "run-"));
                await sshd.restart([keygen(sshd.dir, "host_b", "ed25519")]);
                fpB = sshKeygenFingerprint(path.join(sshd.dir, "host_b.pub"));
            });

            it("a command refuses the server at once, and nothing runs, not even the login", async () => {
                const mark = sshd.log().length;
                const started = Date.now();
                await assert.rejects(remoteCommandProvider.create!(inputs(fpA)), (e: Error) => {
                    for (const s of [
                        `SSH host key of root@127.0.0.1:${sshd.port} changed: refusing to connect`,
                        `expected:  ${fpA}`,
                        `presented: ${fpB} (ssh-ed25519)`,
                        `pulumi config set --path 'redis-ha:nodes[<i>].hostKey' ${fpB}`,
                        "pulumi up --replace 'urn:pulumi:prod::redis-ha::pulumi-nodejs:dynamic:Resource::redis-1-host-key'",
                    ]) {
                        assert.ok(e.message.includes(s), `${s} in:\n${e.message}`);
                    }
                    return true;
                });
                const took = Date.now() - started;
                assert.ok(took < 5000, `no retry loop (took ${took} ms, dial timeout 30 s)`);
                await new Promise((r) => setTimeout(r, 300));
                assert.deepStrictEqual(fs.readdirSync(runDir), [], "the script ran");
                const log = sshd.log(mark);
                // It hung up in the key exchange: first on the ed25519 key, then (asked for another
                // type) on finding none; never an authentication request, let alone a session.
                assert.match(log, /Disconnected from 127\.0\.0\.1 port \d+ \[preauth\]/);
                assert.match(log, /no matching host key type found/);
                assert.doesNotMatch(log, /userauth|Accepted publickey|session/i, "the client went past the key exchange");
            });

            it("a delete step checks the host key of the old state", async () => {
                await assert.rejects(remoteCommandProvider.delete!("id", inputs(fpA)), /SSH host key of .* changed/);
                assert.deepStrictEqual(fs.readdirSync(runDir), []);
            });

            it("a state from before host keys (none recorded) is not refused", async () => {
                await remoteCommandProvider.delete!("id", inputs(undefined));
                assert.deepStrictEqual(fs.readdirSync(runDir).sort(), ["deleted", "stdin"]);
                assert.strictEqual(fs.readFileSync(path.join(runDir, "stdin"), "utf8"), canary);
            });

            it("HostKey waits for a server that is still booting", async () => {
                await sshd.halt();
                const booting = new Promise((r) => setTimeout(r, 2000)).then(() => sshd.restart([path.join(sshd.dir, "host_b")]));
                const started = Date.now();
                const outs = await create({ connection: target(), providerVersion: "1" });
                await booting;
                assert.strictEqual(outs.fingerprint, fpB);
                assert.ok(Date.now() - started >= 2000, "it did not wait");
            });

            it("a HostKey of a new provider version looks again, accepting only the recorded key", async () => {
                const olds: HostKeyOutputs = { host: "127.0.0.1", port: sshd.port, fingerprint: fpA, keyType: "ssh-ed25519", providerVersion: "0" };
                await assert.rejects(hostKeyProvider.update!("id", olds, { connection: target(), providerVersion: "1" }), /SSH host key of .* changed/);
            });

            it("a HostKey replaced (--replace) records the new key, and commands run with it", async () => {
                const outs = await create({ connection: target(), providerVersion: "1" });
                assert.strictEqual(outs.fingerprint, fpB);
                const ran = (await remoteCommandProvider.create!(inputs(outs.fingerprint))).outs as CommandOutputs;
                assert.ok(fs.existsSync(path.join(runDir, "created")));
                assert.strictEqual(ran.hostKey, fpB);
            });
        });

    });
});
