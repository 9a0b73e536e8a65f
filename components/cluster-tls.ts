// The cluster's certificates with tls.enabled, and what each party gets of them: the user's
// (tlsCertificates), or a private CA the program makes (tls-certs.ts) with a certificate per
// node naming its address, loopback and the VIPs (clients reach any node through them), and with
// tls.authClients client certificates for the `app` user's clients and for the deployer.
import * as pulumi from "@pulumi/pulumi";
import { type NodeConfig, proxyVips, type ResolvedConfig } from "./config";
import type { TlsClientOptions } from "./redis-client";
import type { NodeTls } from "./redis-node";
import { type IssuedCert, TlsCertificates } from "./tls-certs";
import { type CertPair, certEnd, type UserCerts } from "./tls-user-certs";

/** Where the certificates come from: TlsCertificates, or the user's (userCertSource). */
interface CertSource {
    caCert: pulumi.Output<string>;
    nodeCerts: pulumi.Output<Record<string, IssuedCert>>;
    clientCerts: pulumi.Output<Record<string, IssuedCert>>;
}

export interface ClusterTls {
    /** The CA certificate clients trust (PEM; not secret). */
    caCert: pulumi.Output<string>;
    /** What a client needs (secret): the deployer's own connections, or the outputs' `app` clients. */
    client: (who: "app" | "deployer") => pulumi.Output<TlsClientOptions>;
    /** A node's CA, certificate and key (secret), for its redis-node.sh. */
    node: (node: NodeConfig) => pulumi.Output<NodeTls>;
    /** When a node's certificate ends: a renewal changes it. */
    until: (node: string) => pulumi.Output<string>;
}

/** With tls.enabled, the cluster's certificates; otherwise undefined. */
export function clusterTls(name: string, cfg: ResolvedConfig, own: pulumi.Output<UserCerts> | undefined, opts: pulumi.CustomResourceOptions): ClusterTls | undefined {
    if (!cfg.tls.enabled) return undefined;
    const vips = proxyVips(cfg.proxy);
    const certs: CertSource = own
        ? userCertSource(own)
        : new TlsCertificates(
              `${name}-tls`,
              {
                  nodes: cfg.nodes.map((n) => ({ name: n.name, ips: [n.privateIp, "127.0.0.1", ...vips] })),
                  clients: cfg.tls.authClients ? ["app", "deployer"] : [],
                  validityDays: cfg.tls.validityDays,
                  renewBeforeDays: cfg.tls.renewBeforeDays,
                  caName: `redis-ha ${name} CA`,
              },
              opts,
          );
    return {
        caCert: certs.caCert,
        client: (who) => pulumi.secret(pulumi.all([certs.caCert, certs.clientCerts]).apply(([ca, c]) => ({ ca, ...(c[who] ? { cert: c[who].cert, key: c[who].key } : {}) }))),
        node: (node) => pulumi.secret(pulumi.all([certs.caCert, certs.nodeCerts]).apply(([ca, c]) => ({ ca, cert: c[node.name].cert, key: c[node.name].key }))),
        until: (node) => pulumi.unsecret(certs.nodeCerts.apply((c) => c[node].notAfter)),
    };
}

/** The certificates the user brought (tlsCertificates, checked), as TlsCertificates gives its own. */
function userCertSource(own: pulumi.Output<UserCerts>): CertSource {
    const issued = (pairs: Record<string, CertPair | undefined> | undefined) =>
        Object.fromEntries(Object.entries(pairs ?? {}).flatMap(([name, p]) => (p ? [[name, { ...p, notAfter: certEnd(p.cert) }]] : [])));
    return {
        caCert: pulumi.unsecret(own.apply((o) => o.ca)),
        nodeCerts: pulumi.secret(own.apply((o) => issued(o.nodes))),
        clientCerts: pulumi.secret(own.apply((o) => issued(o.clients))),
    };
}
