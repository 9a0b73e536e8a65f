// Certificates brought by the user (the secret config key tlsCertificates, a JSON document)
// instead of the private CA the program makes: the CA's certificate, and per node a certificate
// and its key; with tls.authClients also the clients' (app: the outputs'; deployer: the
// program's own connections). Checked at preview with Node's own X.509 parser: each certificate
// signed by that CA, matching its key, naming the addresses clients dial, and not expired.
import { createPrivateKey, X509Certificate } from "crypto";
import { z } from "zod";

const pem = (kind: "CERTIFICATE" | "PRIVATE KEY", example: string) =>
    z.string({ error: `must be a PEM ${kind.toLowerCase()} (${example})` }).refine((t) => new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(t), {
        error: `must be a PEM ${kind.toLowerCase()} (${example})`,
    });
const pair = z.strictObject({ cert: pem("CERTIFICATE", "-----BEGIN CERTIFICATE-----…"), key: pem("PRIVATE KEY", "-----BEGIN PRIVATE KEY-----…") });
export type CertPair = z.infer<typeof pair>;

export const userCertsSchema = z.strictObject({
    /** The CA certificate clients and servers trust. */
    ca: pem("CERTIFICATE", "the CA's -----BEGIN CERTIFICATE-----…"),
    /** Per node name: its certificate and key. */
    nodes: z.record(z.string(), pair),
    /** With tls.authClients: the `app` and `deployer` client certificates and keys. */
    clients: z.partialRecord(z.enum(["app", "deployer"]), pair).optional(),
});
export type UserCerts = z.infer<typeof userCertsSchema>;

/** The JSON text of tlsCertificates, parsed and shaped, or an issue naming what is wrong. */
export const userCertsText = z
    .string()
    .transform((text, ctx) => {
        try {
            return JSON.parse(text) as unknown;
        } catch {
            ctx.addIssue({
                code: "custom",
                message: 'is not JSON: set it from a file, pulumi config set --secret redis-ha:tlsCertificates "$(cat tls.json)" (README "TLS" shows its shape)',
            });
            return z.NEVER;
        }
    })
    .pipe(userCertsSchema);

/**
 * What is wrong with one certificate and key for `ips`, as "<path> <problem>" pairs: not a
 * certificate, not signed by the CA, another key, an address it does not name, expired.
 */
export function certProblems(ca: X509Certificate, p: CertPair, ips: string[], now = new Date()): string[] {
    let cert: X509Certificate;
    try {
        cert = new X509Certificate(p.cert);
    } catch (e) {
        return [`cert is not a certificate Node can read: ${(e as Error).message}`];
    }
    const out: string[] = [];
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) out.push(`cert is not signed by the CA in tlsCertificates.ca (issuer: ${cert.issuer.replace(/\n/g, ", ")})`);
    try {
        if (!cert.checkPrivateKey(createPrivateKey(p.key))) out.push("key does not belong to cert");
    } catch (e) {
        out.push(`key is not a private key Node can read: ${(e as Error).message}`);
    }
    const missing = ips.filter((ip) => cert.checkIP(ip) === undefined);
    if (missing.length > 0) out.push(`cert does not name ${missing.join(", ")} in its subjectAltName (IP entries), which clients dial: issue it with IP:${ips.join(",IP:")}`);
    if (Date.parse(cert.validTo) <= now.getTime()) out.push(`cert expired on ${new Date(cert.validTo).toISOString()}`);
    return out;
}

/** When a certificate ends (ISO 8601). */
export const certEnd = (cert: string) => new Date(new X509Certificate(cert).validTo).toISOString();
