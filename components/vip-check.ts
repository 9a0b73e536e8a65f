// VipCheck: a dynamic resource that waits, with ioredis, until the write VIP answers as the
// master and the read VIP answers at all, so that `pulumi up` ends only when the proxy really
// serves (keepalived takes a few seconds to elect a holder). It runs at creation and whenever a
// proxy node's command ran again, never during preview; the password stays out of its outputs.
import * as pulumi from "@pulumi/pulumi";
import type { Endpoint } from "./endpoint";
import { failFastClient, secretTls, type TlsClientOptions } from "./redis-client";
import { waitingProvider, waitUntil } from "./waiter";

export interface VipCheckArgs {
    write: pulumi.Input<Endpoint>;
    read: pulumi.Input<Endpoint>;
    /** Password of the ACL user `app`. */
    appPassword: pulumi.Input<string>;
    timeoutSeconds: pulumi.Input<number>;
    /** Changes whenever a proxy node was (re)configured. */
    revisions: pulumi.Input<pulumi.Input<string>[]>;
    /** With tls.enabled: the deployer's TLS options (through the VIPs, TLS ends at the nodes). */
    tls?: pulumi.Input<TlsClientOptions>;
}

interface Inputs {
    write: Endpoint;
    read: Endpoint;
    appPassword: string;
    timeoutSeconds: number;
    revisions: string[];
    tls?: TlsClientOptions;
    providerVersion: string;
}

const PROVIDER_VERSION = "1";

/** Waits until both VIPs answer; returns the role each reached. Self-contained: serialized into the provider. */
export async function awaitVips(inputs: Inputs): Promise<{ writeRole: string; readRole: string; waitedSeconds: number }> {
    const roleAt = async (e: Endpoint) => {
        const c = failFastClient({ ...e, username: "app", password: inputs.appPassword, enableReadyCheck: false, connectTimeout: 1000, commandTimeout: 1000, tls: inputs.tls });
        try {
            await c.connect();
            return String(((await c.call("ROLE")) as unknown[])[0]);
        } catch (e) {
            return `no answer (${(e as Error).message})`;
        } finally {
            c.disconnect();
        }
    };
    return waitUntil({
        what: "vip check",
        failure: "the VIPs are not served",
        timeoutSeconds: inputs.timeoutSeconds,
        look: async () => {
            const [writeRole, readRole] = await Promise.all([roleAt(inputs.write), roleAt(inputs.read)]);
            if (writeRole !== "master") return { done: false, why: `write VIP ${inputs.write.host}:${inputs.write.port} reaches: ${writeRole}` };
            if (!["master", "slave"].includes(readRole)) return { done: false, why: `read VIP ${inputs.read.host}:${inputs.read.port} reaches: ${readRole}` };
            return {
                done: true,
                found: { writeRole, readRole },
                says: `write VIP reaches the master, read VIP a ${readRole === "slave" ? "replica" : "master"}`,
            };
        },
    });
}

const provider = waitingProvider({
    id: (inputs: Inputs) => `vip-check-${inputs.write.host}`,
    compared: ["write", "read", "timeoutSeconds", "revisions", "providerVersion"],
    secrets: ["appPassword", "tls"],
    wait: awaitVips,
});

export class VipCheck extends pulumi.dynamic.Resource {
    declare readonly writeRole: pulumi.Output<string>;
    declare readonly readRole: pulumi.Output<string>;

    constructor(name: string, args: VipCheckArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            { ...args, appPassword: pulumi.secret(args.appPassword), ...secretTls(args.tls), providerVersion: PROVIDER_VERSION, writeRole: undefined, readRole: undefined, waitedSeconds: undefined },
            opts,
        );
    }
}
