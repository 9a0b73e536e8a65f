// TlsCertificates: a private CA and, signed by it, a certificate per node (Redis, Sentinel and
// HAProxy present it) and per client, kept in the stack's state with the keys secret. Keys are
// ECDSA P-256 in PKCS#8 PEM, made with @peculiar/x509 on Node's own WebCrypto (no openssl needed).
// A certificate is re-issued at the pulumi up that finds it within renewBeforeDays of expiry or its
// addresses changed; the others, and the CA, stay byte-for-byte. The CA is never replaced: its
// rotation (a new CA trusted beside the old one while the certificates move) is out of scope, and
// caName is only read when the CA is made. A change of validityDays applies to the next re-issue.
// The provider code is serialized into another process: what it calls is self-contained, and
// libraries are required inside the functions.
import * as pulumi from "@pulumi/pulumi";
import type * as X509 from "@peculiar/x509";
import type { webcrypto } from "node:crypto";
import { engineLog } from "./provider-log";

export interface IssuedCert {
    cert: string;
    key: string;
    /** ISO 8601. */
    notAfter: string;
}

export interface CertRequest {
    name: string;
    /** IPv4 addresses for subjectAltName (iPAddress entries) */
    ips: string[];
}

export interface TlsCertificatesArgs {
    /** Per node: its name (CN) and addresses (its private IP, 127.0.0.1, the VIPs). */
    nodes: pulumi.Input<pulumi.Input<CertRequest>[]>;
    /** Client certificates to issue (CN = the name), e.g. ["app"], for tls-auth-clients; may be []. */
    clients: pulumi.Input<string[]>;
    /** Of node and client certificates. */
    validityDays: pulumi.Input<number>;
    /** A certificate this close to notAfter is re-issued at the next pulumi up; below validityDays. */
    renewBeforeDays: pulumi.Input<number>;
    /** Name put in the CA's CN, e.g. "redis-ha <stack> CA". */
    caName: pulumi.Input<string>;
}

/** The args, resolved: what the provider gets. */
export interface TlsInputs {
    nodes: CertRequest[];
    clients: string[];
    validityDays: number;
    renewBeforeDays: number;
    caName: string;
}

/** What the provider keeps: the inputs and the certificates, by node or client name. */
export interface TlsOutputs extends TlsInputs {
    caCert: string;
    caKey: string;
    nodeCerts: Record<string, IssuedCert>;
    clientCerts: Record<string, IssuedCert>;
}

/** Ten years: long enough that CA rotation can stay out of scope. */
const CA_VALIDITY_DAYS = 3650;
const INPUT_KEYS = ["nodes", "clients", "validityDays", "renewBeforeDays", "caName"] as const;

/** @peculiar/x509 on Node's WebCrypto. Self-contained. */
function x509(): typeof X509 {
    require("reflect-metadata"); // tsyringe, inside @peculiar/x509, needs the Reflect polyfill first
    const lib = require("@peculiar/x509") as typeof X509;
    lib.cryptoProvider.set(require("node:crypto").webcrypto);
    return lib;
}

/**
 * Makes a key pair and a certificate for it, signed by `issuer` (or by itself), valid from an
 * hour before `now` (clock skew between servers) for `days`. Self-contained.
 */
async function signed(
    lib: typeof X509,
    cn: string,
    days: number,
    now: Date,
    issuer: { cert: string; key: string } | undefined,
    extensions: (keys: webcrypto.CryptoKeyPair, issuer?: X509.X509Certificate) => Promise<X509.Extension[]>,
): Promise<IssuedCert> {
    const subtle = lib.cryptoProvider.get().subtle;
    const ec = { name: "ECDSA", namedCurve: "P-256" };
    const keys = (await subtle.generateKey(ec, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    // 16 random bytes, positive, and with no leading zero byte that DER would have to drop.
    const serial = lib.cryptoProvider.get().getRandomValues(new Uint8Array(16));
    serial[0] = (serial[0] & 0x7f) | 0x40;
    const common = {
        serialNumber: Buffer.from(serial).toString("hex"),
        notBefore: new Date(now.getTime() - 3_600_000),
        notAfter: new Date(now.getTime() + days * 86_400_000),
        signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    };
    const issuerCert = issuer && new lib.X509Certificate(issuer.cert);
    const cert = issuerCert
        ? await lib.X509CertificateGenerator.create({
              ...common,
              subject: [{ CN: [cn] }],
              issuer: issuerCert.subjectName,
              publicKey: keys.publicKey,
              signingKey: await subtle.importKey("pkcs8", lib.PemConverter.decodeFirst(issuer!.key), ec, false, ["sign"]),
              extensions: await extensions(keys, issuerCert),
          })
        : await lib.X509CertificateGenerator.createSelfSigned({ ...common, name: [{ CN: [cn] }], keys, extensions: await extensions(keys) });
    const key = lib.PemConverter.encode(await subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
    return { cert: cert.toString("pem") + "\n", key: key + "\n", notAfter: cert.notAfter.toISOString() };
}

/** A self-signed CA: it signs certificates (pathLen 0: no intermediates), nothing else. Self-contained. */
export async function issueCa(name: string, validityDays: number, now = new Date()): Promise<IssuedCert> {
    const lib = x509();
    return signed(lib, name, validityDays, now, undefined, async (keys) => [
        new lib.BasicConstraintsExtension(true, 0, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ]);
}

/**
 * A node certificate (CN = name, its IPs as subjectAltName; serverAuth and clientAuth, as replicas
 * and sentinels present it to their peers as a client certificate), or with `client` one for
 * clientAuth only. Self-contained.
 */
export async function issueCert(
    ca: { cert: string; key: string },
    req: { name: string; ips: string[]; client?: boolean },
    validityDays: number,
    now = new Date(),
): Promise<IssuedCert> {
    const lib = x509();
    return signed(lib, req.name, validityDays, now, ca, async (keys, issuer) => [
        new lib.BasicConstraintsExtension(false, undefined, true),
        new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature | lib.KeyUsageFlags.keyEncipherment, true),
        new lib.ExtendedKeyUsageExtension(req.client ? [lib.ExtendedKeyUsage.clientAuth] : [lib.ExtendedKeyUsage.serverAuth, lib.ExtendedKeyUsage.clientAuth]),
        new lib.AuthorityKeyIdentifierExtension(issuer!.getExtension(lib.SubjectKeyIdentifierExtension)!.keyId),
        await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ...(req.ips.length > 0 ? [new lib.SubjectAlternativeNameExtension(req.ips.map((ip) => ({ type: "ip" as const, value: ip })))] : []),
    ]);
}

/**
 * The certificates to issue, as "nodeCerts.<name>" and "clientCerts.<name>": those missing from
 * `olds` (the state), a node's whose ips differ from those it was issued for (as a set), and those
 * within renewBeforeDays of notAfter at `now`. Certificates of removed nodes and clients are not
 * listed: update drops them. Self-contained.
 */
export function dueCerts(olds: Partial<TlsOutputs>, news: Pick<TlsInputs, "nodes" | "clients" | "renewBeforeDays">, now: Date): string[] {
    const stale = (c: IssuedCert | undefined) => !c || !(now.getTime() < Date.parse(c.notAfter) - news.renewBeforeDays * 86_400_000);
    const ipSet = (ips: string[] | undefined) => JSON.stringify([...new Set(ips ?? [])].sort());
    const due: string[] = [];
    for (const n of news.nodes) {
        const was = olds.nodes?.find((o) => o.name === n.name);
        if (stale(olds.nodeCerts?.[n.name]) || ipSet(was?.ips) !== ipSet(n.ips)) due.push(`nodeCerts.${n.name}`);
    }
    for (const c of news.clients) if (stale(olds.clientCerts?.[c])) due.push(`clientCerts.${c}`);
    return due;
}

/** Refuses settings that would re-issue every certificate at every run. Self-contained. */
function checked(news: TlsInputs): TlsInputs {
    if (!(news.renewBeforeDays >= 0 && news.renewBeforeDays < news.validityDays)) {
        throw new Error(`TLS certificates: renewBeforeDays (${news.renewBeforeDays}) must be at least 0 and below validityDays (${news.validityDays})`);
    }
    return news;
}

/** Issues `due` of the wanted certificates, keeping the others from `olds`; drops the unwanted. Self-contained. */
async function reissued(ca: { cert: string; key: string }, olds: Partial<TlsOutputs>, news: TlsInputs, due: string[]) {
    const nodeCerts: Record<string, IssuedCert> = {};
    const clientCerts: Record<string, IssuedCert> = {};
    for (const n of news.nodes) {
        nodeCerts[n.name] = due.includes(`nodeCerts.${n.name}`) ? await issueCert(ca, n, news.validityDays) : olds.nodeCerts![n.name];
    }
    for (const c of news.clients) {
        clientCerts[c] = due.includes(`clientCerts.${c}`) ? await issueCert(ca, { name: c, ips: [], client: true }, news.validityDays) : olds.clientCerts![c];
    }
    return { nodeCerts, clientCerts };
}

export const tlsCertificatesProvider: pulumi.dynamic.ResourceProvider<TlsInputs, TlsOutputs> = {
    async diff(_id: string, olds: TlsOutputs, news: TlsInputs) {
        const changed = INPUT_KEYS.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        // In a preview, inputs may still be unknown (a placeholder string): then only `changed` counts.
        const known =
            Array.isArray(news.nodes) && news.nodes.every((n) => Array.isArray(n?.ips)) && Array.isArray(news.clients) && [news.validityDays, news.renewBeforeDays].every((d) => typeof d === "number");
        const due = known ? dueCerts(olds, checked(news), new Date()) : [];
        // The engine shows no property for a re-issue that only time made due: say which.
        if (due.length > 0) engineLog("tls certificates")(`to issue (new, new addresses, or within ${news.renewBeforeDays} days of expiry): ${due.join(", ")}`);
        return { changes: changed || due.length > 0 };
    },
    async create(inputs: TlsInputs) {
        const ca = await issueCa(checked(inputs).caName, CA_VALIDITY_DAYS);
        const all = [...inputs.nodes.map((n) => `nodeCerts.${n.name}`), ...inputs.clients.map((c) => `clientCerts.${c}`)];
        const certs = await reissued(ca, {}, inputs, all);
        const id = `tls-${require("node:crypto").randomUUID()}`;
        return { id, outs: { ...inputs, caCert: ca.cert, caKey: ca.key, ...certs } };
    },
    async update(_id: string, olds: TlsOutputs, news: TlsInputs) {
        const ca = { cert: olds.caCert, key: olds.caKey };
        const certs = await reissued(ca, olds, news, dueCerts(olds, checked(news), new Date()));
        return { outs: { ...news, caCert: ca.cert, caKey: ca.key, ...certs } };
    },
};

/** A private CA and the nodes' and clients' certificates; the keys are secret outputs. */
export class TlsCertificates extends pulumi.dynamic.Resource {
    /** PEM; public. */
    declare readonly caCert: pulumi.Output<string>;
    declare readonly caKey: pulumi.Output<string>;
    declare readonly nodeCerts: pulumi.Output<Record<string, IssuedCert>>;
    declare readonly clientCerts: pulumi.Output<Record<string, IssuedCert>>;

    constructor(name: string, args: TlsCertificatesArgs, opts?: pulumi.CustomResourceOptions) {
        const secrets = [...(opts?.additionalSecretOutputs ?? []), "caKey", "nodeCerts", "clientCerts"];
        super(tlsCertificatesProvider, name, { ...args, caCert: undefined, caKey: undefined, nodeCerts: undefined, clientCerts: undefined }, { ...opts, additionalSecretOutputs: secrets });
    }
}
