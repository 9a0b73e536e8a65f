// ContainerGate: with runtime docker, what a node's Redis container waits for before Pulumi
// replaces it (a new docker.image). The containers have fixed names and host networking, so a
// replacement must delete the old container first; done on every node at once, the whole group
// would be down. So each node's Redis container depends on its gate, and each gate on the Redis
// container of the node before it in the rolling order (replicas first, the master last, see
// rollingOrder). When the image changes, a gate waits until the group is whole again (every
// sentinel agrees, every replica linked: the previous node is back), and if its node is the
// master at that moment, hands the role over first (planned-failover.ts). On creation it does
// nothing: there is no group yet to protect.
import * as pulumi from "@pulumi/pulumi";
import type { NodeEndpoint } from "./endpoint";
import { plannedFailover } from "./planned-failover";
import { engineLog } from "./provider-log";
import { awaitAgreement } from "./sentinel-agreement";

export interface ContainerGateInputs {
    masterName: string;
    /** The node whose container waits. */
    node: string;
    /** Every live node's Redis and Sentinel. */
    redis: NodeEndpoint[];
    sentinels: NodeEndpoint[];
    /** The image the container will run: a change opens the gate's wait. */
    image: string;
    adminPassword: string;
    timeoutSeconds: number;
    providerVersion: string;
}

const PROVIDER_VERSION = "1";

/**
 * The order in which the nodes' containers are replaced: the replicas in config order, then the
 * master (as the sentinels name it now; the initial master for a cluster not created yet).
 */
export function rollingOrder(nodes: string[], master: string | undefined): string[] {
    return [...nodes.filter((n) => n !== master), ...nodes.filter((n) => n === master)];
}

/** Waits for the group, and hands the master role over when `node` holds it. Self-contained. */
export async function openGate(inputs: ContainerGateInputs): Promise<{ handedOver: boolean }> {
    const log = engineLog(`container gate ${inputs.node}`);
    const agreed = await awaitAgreement({ ...inputs, revisions: [], providerVersion: inputs.providerVersion });
    if (agreed.master.name !== inputs.node) return { handedOver: false };
    const self = inputs.redis.find((r) => r.name === inputs.node)!;
    const instance = (e: NodeEndpoint) => ({ name: e.name, ip: e.host, port: e.port });
    log(`${inputs.node} is the master and its container is replaced next: a planned failover first`);
    await plannedFailover({
        masterName: inputs.masterName,
        sentinels: inputs.sentinels.map(instance),
        master: instance(self),
        replicas: inputs.redis.map(instance),
        adminPassword: inputs.adminPassword,
        timeoutSeconds: inputs.timeoutSeconds,
    });
    return { handedOver: true };
}

type Outs = Omit<ContainerGateInputs, "adminPassword"> & { handedOver: boolean };

const provider: pulumi.dynamic.ResourceProvider<ContainerGateInputs, Outs> = {
    async diff(_id, olds, news) {
        return { changes: olds.image !== news.image || olds.providerVersion !== news.providerVersion };
    },
    async create(inputs) {
        const { adminPassword: _a, ...kept } = inputs;
        return { id: `${inputs.node}-container-gate`, outs: { ...kept, handedOver: false } };
    },
    async update(_id, _olds, news) {
        const { adminPassword: _a, ...kept } = news;
        return { outs: { ...kept, ...(await openGate(news)) } };
    },
};

export interface ContainerGateArgs {
    masterName: string;
    node: string;
    redis: NodeEndpoint[];
    sentinels: NodeEndpoint[];
    image: pulumi.Input<string>;
    adminPassword: pulumi.Input<string>;
    timeoutSeconds: number;
}

/** What a node's Redis container waits for before a replacement (see the top of this file). */
export class ContainerGate extends pulumi.dynamic.Resource {
    constructor(name: string, args: ContainerGateArgs, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { ...args, adminPassword: pulumi.secret(args.adminPassword), providerVersion: PROVIDER_VERSION, handedOver: undefined }, opts);
    }
}
