// The private CA and the node and client certificates: their content as Node and openssl read it,
// real TLS handshakes on 127.0.0.1 with them, which certificates are due, and the provider, which
// re-issues only those and keeps the CA, also as the engine runs it (from its serialized code).
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import * as pulumi from "@pulumi/pulumi";
import { dueCerts, issueCa, issueCert, tlsCertificatesProvider, type IssuedCert, type TlsInputs, type TlsOutputs } from "../../components/tls-certs";

const DAY = 86_400_000;
const IPS = ["10.0.10.7", "127.0.0.1", "10.0.10.100"];

/** Connects to a TLS server on 127.0.0.1 made with `server`; resolves with what the server said, or the error. */
async function handshake(server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<{ said?: string; error?: NodeJS.ErrnoException }> {
    const srv = tls.createServer(server, (s) => s.end(`hello ${(s.getPeerCertificate() as tls.PeerCertificate).subject?.CN ?? "anonymous"}`));
    srv.on("tlsClientError", () => undefined);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
        return await new Promise((resolve) => {
            const c = tls.connect({ host: "127.0.0.1", port: (srv.address() as { port: number }).port, ...client });
            let said = "";
            c.on("data", (d) => (said += d));
            c.on("end", () => resolve({ said }));
            c.on("error", (error) => resolve({ error }));
        });
    } finally {
        srv.close();
    }
}

describe("TLS certificates", function () {
    let ca: IssuedCert;
    let node: IssuedCert;
    let client: IssuedCert;
    const issuedAt = new Date();

    before(async () => {
        ca = await issueCa("redis-ha unit CA", 3650);
        node = await issueCert(ca, { name: "redis-1", ips: IPS }, 365, issuedAt);
        client = await issueCert(ca, { name: "app", ips: [], client: true }, 365);
    });

    it("issues a CA that signs only certificates, and a node certificate it signed, for the node's IPs alone", () => {
        const caX = new crypto.X509Certificate(ca.cert);
        assert.ok(caX.ca);
        assert.match(caX.subject, /CN=redis-ha unit CA/);
        const x = new crypto.X509Certificate(node.cert);
        assert.ok(!x.ca);
        assert.ok(x.verify(caX.publicKey) && x.checkIssued(caX));
        assert.strictEqual(x.subjectAltName, IPS.map((ip) => `IP Address:${ip}`).join(", "));
        for (const ip of IPS) assert.strictEqual(x.checkIP(ip), ip);
        assert.strictEqual(x.checkIP("10.0.10.8"), undefined);
        assert.deepStrictEqual([...(x.keyUsage ?? [])].sort(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // serverAuth, clientAuth
        assert.deepStrictEqual(new crypto.X509Certificate(client.cert).keyUsage, ["1.3.6.1.5.5.7.3.2"]);
        assert.ok(Math.abs(Date.parse(x.validTo) - (issuedAt.getTime() + 365 * DAY)) < 2000, x.validTo);
        assert.ok(Math.abs(Date.parse(x.validFrom) - (issuedAt.getTime() - 3_600_000)) < 2000, x.validFrom);
        assert.strictEqual(node.notAfter, new Date(x.validTo).toISOString());
        assert.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/);
        const key = crypto.createPrivateKey(node.key);
        assert.ok(node.key.startsWith("-----BEGIN PRIVATE KEY-----\n"));
        assert.strictEqual(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
        assert.ok(x.checkPrivateKey(key));
        assert.ok(!x.checkPrivateKey(crypto.createPrivateKey(client.key)));
    });

    it("openssl verifies the node certificate against the CA", function () {
        try {
            execFileSync("openssl", ["version"], { stdio: "ignore" });
        } catch {
            this.skip();
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rha-tls-"));
        try {
            fs.writeFileSync(path.join(dir, "ca.pem"), ca.cert);
            fs.writeFileSync(path.join(dir, "node.pem"), node.cert);
            const out = execFileSync("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), path.join(dir, "node.pem")], { encoding: "utf8" });
            assert.match(out, /node\.pem: OK/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("serves TLS on 127.0.0.1 to a client trusting the CA, to no other, and not for an address it lacks", async () => {
        assert.deepStrictEqual(await handshake({ cert: node.cert, key: node.key }, { ca: ca.cert }), { said: "hello anonymous" });
        const other = await issueCa("another CA", 10);
        const { error } = await handshake({ cert: node.cert, key: node.key }, { ca: other.cert });
        assert.strictEqual(error?.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
        const elsewhere = await issueCert(ca, { name: "redis-9", ips: ["10.0.10.9"] }, 365);
        const wrongIp = await handshake({ cert: elsewhere.cert, key: elsewhere.key }, { ca: ca.cert });
        assert.strictEqual(wrongIp.error?.code, "ERR_TLS_CERT_ALTNAME_INVALID");
    });

    it("with client certificates required, takes the client's and a node's, and refuses none", async () => {
        const server = { cert: node.cert, key: node.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true };
        assert.deepStrictEqual(await handshake(server, { ca: ca.cert, cert: client.cert, key: client.key }), { said: "hello app" });
        // A replica or a sentinel presents its node certificate as a client certificate.
        assert.deepStrictEqual(await handshake(server, { ca: ca.cert, cert: node.cert, key: node.key }), { said: "hello redis-1" });
        const { error } = await handshake(server, { ca: ca.cert });
        assert.strictEqual(error?.code, "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");
    });

    describe("which are due", () => {
        const news = { nodes: [{ name: "redis-1", ips: IPS }], clients: ["app"], renewBeforeDays: 30 };
        const olds = (): Partial<TlsOutputs> => ({ nodes: news.nodes, clients: news.clients, nodeCerts: { "redis-1": node }, clientCerts: { app: client } });

        it("none right after issue, nor a day before the renewal window; all once within it", () => {
            assert.deepStrictEqual(dueCerts(olds(), news, issuedAt), []);
            assert.deepStrictEqual(dueCerts(olds(), news, new Date(issuedAt.getTime() + (365 - 30 - 1) * DAY)), []);
            assert.deepStrictEqual(dueCerts(olds(), news, new Date(issuedAt.getTime() + (365 - 30 + 1) * DAY)), ["nodeCerts.redis-1", "clientCerts.app"]);
        });

        it("a node whose addresses changed (not their order), a new node and a new client; not a removed one", () => {
            assert.deepStrictEqual(dueCerts(olds(), { ...news, nodes: [{ name: "redis-1", ips: [...IPS].reverse() }] }, issuedAt), []);
            assert.deepStrictEqual(dueCerts(olds(), { ...news, nodes: [{ name: "redis-1", ips: ["10.0.10.9", "127.0.0.1"] }] }, issuedAt), ["nodeCerts.redis-1"]);
            const grown = { ...news, nodes: [...news.nodes, { name: "redis-2", ips: ["10.0.10.8"] }], clients: ["app", "backup"] };
            assert.deepStrictEqual(dueCerts(olds(), grown, issuedAt), ["nodeCerts.redis-2", "clientCerts.backup"]);
            assert.deepStrictEqual(dueCerts(olds(), { ...news, nodes: [], clients: [] }, issuedAt), []);
        });
    });

    describe("provider", () => {
        const inputs: TlsInputs = {
            nodes: ["redis-1", "redis-2", "redis-3"].map((name, i) => ({ name, ips: [`10.0.10.${7 + i}`, "127.0.0.1"] })),
            clients: ["app"],
            validityDays: 365,
            renewBeforeDays: 30,
            caName: "redis-ha unit CA",
        };
        const p = tlsCertificatesProvider;
        const created = async () => (await p.create!(inputs)).outs as TlsOutputs;

        it("creates a CA and every certificate, and wants no change for the same inputs", async () => {
            const outs = await created();
            assert.deepStrictEqual(Object.keys(outs.nodeCerts), ["redis-1", "redis-2", "redis-3"]);
            assert.deepStrictEqual(Object.keys(outs.clientCerts), ["app"]);
            for (const c of [...Object.values(outs.nodeCerts), outs.clientCerts.app]) assert.ok(new crypto.X509Certificate(c.cert).checkIssued(new crypto.X509Certificate(outs.caCert)));
            assert.deepStrictEqual(await p.diff!("id", outs, inputs), { changes: false });
            assert.deepStrictEqual(await p.diff!("id", outs, { ...inputs, clients: [] }), { changes: true });
            await assert.rejects(p.diff!("id", outs, { ...inputs, renewBeforeDays: 365 }), /renewBeforeDays \(365\) must be at least 0 and below validityDays \(365\)/);
        });

        it("re-issues only the certificate that time made due, keeping the CA and the others byte-for-byte", async () => {
            const outs = await created();
            const old = { ...outs, nodeCerts: { ...outs.nodeCerts, "redis-2": await issueCert({ cert: outs.caCert, key: outs.caKey }, inputs.nodes[1], 365, new Date(Date.now() - 340 * DAY)) } };
            const lines: string[] = [];
            const write = process.stderr.write;
            process.stderr.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof process.stderr.write;
            try {
                assert.deepStrictEqual(await p.diff!("id", old, inputs), { changes: true });
            } finally {
                process.stderr.write = write;
            }
            assert.match(lines.join(""), /tls certificates: to issue .*: nodeCerts\.redis-2\n/);
            const { outs: after } = (await p.update!("id", old, { ...inputs, nodes: inputs.nodes.slice(0, 2) })) as { outs: TlsOutputs };
            assert.strictEqual(after.caCert, outs.caCert);
            assert.strictEqual(after.caKey, outs.caKey);
            assert.deepStrictEqual(after.nodeCerts["redis-1"], outs.nodeCerts["redis-1"]);
            assert.deepStrictEqual(after.clientCerts, outs.clientCerts);
            assert.deepStrictEqual(Object.keys(after.nodeCerts), ["redis-1", "redis-2"]);
            assert.notDeepStrictEqual(after.nodeCerts["redis-2"], old.nodeCerts["redis-2"]);
            assert.ok(Date.parse(after.nodeCerts["redis-2"].notAfter) > Date.now() + 364 * DAY);
            assert.ok(new crypto.X509Certificate(after.nodeCerts["redis-2"].cert).checkIssued(new crypto.X509Certificate(outs.caCert)));
            assert.deepStrictEqual(await p.diff!("id", after, { ...inputs, nodes: inputs.nodes.slice(0, 2) }), { changes: false });
        });

        it("survives Pulumi's closure serialization (as in the state)", async () => {
            const { text } = await pulumi.runtime.serializeFunction(() => tlsCertificatesProvider, { allowSecrets: true });
            const requireFromString = require("require-from-string") as (code: string, file: string) => { handler: () => pulumi.dynamic.ResourceProvider };
            const loaded = requireFromString(text, path.join(__dirname, "serialized-provider.js")).handler();
            const { outs } = await loaded.create!(inputs);
            const aged = { ...outs, clientCerts: { app: { ...outs.clientCerts.app, notAfter: new Date(Date.now() + DAY).toISOString() } } };
            const { outs: after } = await loaded.update!("id", aged, inputs);
            assert.strictEqual(after.caCert, outs.caCert);
            assert.notStrictEqual(after.clientCerts.app.cert, outs.clientCerts.app.cert);
            assert.strictEqual(after.nodeCerts["redis-3"].cert, outs.nodeCerts["redis-3"].cert);
        });
    });
});
