// VipCheck: a dynamic resource that waits, with ioredis, until the write VIP answers as the
// master and the read VIP answers at all, so that `pulumi up` ends only when the proxy really
// serves (keepalived takes a few seconds to elect a holder). It runs at creation and whenever a
// proxy node's command ran again, never during preview; the password stays out of its outputs.
import * as pulumi from "@pulumi/pulumi";
import { engineLog } from "./provider-log";
import { failFastClient } from "./redis-client";

export interface VipCheckArgs {
    write: pulumi.Input<{ host: string; port: number }>;
    read: pulumi.Input<{ host: string; port: number }>;
    /** Password of the ACL user `app`. */
    appPassword: pulumi.Input<string>;
    timeoutSeconds: pulumi.Input<number>;
    /** Changes whenever a proxy node was (re)configured. */
    revisions: pulumi.Input<pulumi.Input<string>[]>;
}

interface Inputs {
    write: { host: string; port: number };
    read: { host: string; port: number };
    appPassword: string;
    timeoutSeconds: number;
    revisions: string[];
    providerVersion: string;
}

interface Outputs extends Omit<Inputs, "appPassword"> {
    writeRole: string;
    readRole: string;
    waitedSeconds: number;
}

const PROVIDER_VERSION = "1";

/** Waits until both VIPs answer; returns the role each reached. Self-contained: serialized into the provider. */
export async function awaitVips(inputs: Inputs): Promise<{ writeRole: string; readRole: string; waitedSeconds: number }> {
    const progress = engineLog("vip check");
    const started = Date.now();
    const roleAt = async (e: { host: string; port: number }) => {
        const c = failFastClient({ ...e, username: "app", password: inputs.appPassword, enableReadyCheck: false, connectTimeout: 1000, commandTimeout: 1000 });
        try {
            await c.connect();
            return String(((await c.call("ROLE")) as unknown[])[0]);
        } catch (e) {
            return `no answer (${(e as Error).message})`;
        } finally {
            c.disconnect();
        }
    };
    let last = "";
    for (;;) {
        const [writeRole, readRole] = await Promise.all([roleAt(inputs.write), roleAt(inputs.read)]);
        const why =
            writeRole !== "master"
                ? `write VIP ${inputs.write.host}:${inputs.write.port} reaches: ${writeRole}`
                : !["master", "slave"].includes(readRole)
                  ? `read VIP ${inputs.read.host}:${inputs.read.port} reaches: ${readRole}`
                  : "";
        const waitedSeconds = Math.round((Date.now() - started) / 100) / 10;
        if (!why) {
            progress(`write VIP reaches the master, read VIP a ${readRole === "slave" ? "replica" : "master"} (after ${waitedSeconds} s)`);
            return { writeRole, readRole, waitedSeconds };
        }
        if (waitedSeconds > inputs.timeoutSeconds) throw new Error(`the VIPs are not served within ${inputs.timeoutSeconds} s: ${why}`);
        if (why !== last) progress(`waiting: ${why}`);
        last = why;
        await new Promise((r) => setTimeout(r, 500));
    }
}

const provider: pulumi.dynamic.ResourceProvider<Inputs, Outputs> = {
    async diff(_id: string, olds: Outputs, news: Inputs) {
        const keys = ["write", "read", "timeoutSeconds", "revisions", "providerVersion"] as const;
        return { changes: keys.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
    },
    async create(inputs: Inputs) {
        const found = await awaitVips(inputs);
        const { appPassword: _p, ...kept } = inputs;
        return { id: `vip-check-${inputs.write.host}`, outs: { ...kept, ...found } };
    },
    async update(_id: string, _olds: Outputs, news: Inputs) {
        const found = await awaitVips(news);
        const { appPassword: _p, ...kept } = news;
        return { outs: { ...kept, ...found } };
    },
};

export class VipCheck extends pulumi.dynamic.Resource {
    declare readonly writeRole: pulumi.Output<string>;
    declare readonly readRole: pulumi.Output<string>;

    constructor(name: string, args: VipCheckArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            { ...args, appPassword: pulumi.secret(args.appPassword), providerVersion: PROVIDER_VERSION, writeRole: undefined, readRole: undefined, waitedSeconds: undefined },
            opts,
        );
    }
}
