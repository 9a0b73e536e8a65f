// RuntimeGuard: refuses, at preview, a stack whose runtime changed (packages <-> docker).
// Switching would stop one kind of Redis and start the other on the same data directories with
// no ordering, so it is refused; README "Switching runtimes" gives the migration. The check runs
// in the provider's diff, which the engine calls during preview, before any server is touched.
import * as pulumi from "@pulumi/pulumi";

interface Inputs {
    runtime: string;
}

const provider: pulumi.dynamic.ResourceProvider<Inputs, Inputs> = {
    async diff(_id: string, olds: Inputs, news: Inputs) {
        if (olds.runtime !== news.runtime) {
            throw new Error(
                `redis-ha:runtime changed from ${olds.runtime} to ${news.runtime}, which this stack does not do in place: ` +
                    `set it back to ${olds.runtime}, or migrate as README "Switching runtimes" explains (pulumi destroy keeps the data, then pulumi up with the new runtime).`,
            );
        }
        return { changes: false };
    },
    async create(inputs: Inputs) {
        return { id: `runtime-${inputs.runtime}`, outs: inputs };
    },
};

export class RuntimeGuard extends pulumi.dynamic.Resource {
    constructor(name: string, runtime: string, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { runtime }, opts);
    }
}
