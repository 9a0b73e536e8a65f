// Server: one bare-metal host. Waits for SSH, records what the host is, and installs and
// configures redis-server through scripts in assets/.
import * as pulumi from "@pulumi/pulumi";
import { readAsset } from "./assets";
import { RemoteCommand } from "./remote-command";
import type { NodeConfig } from "./config";

export interface ServerArgs {
    node: NodeConfig;
    /** Private key for the node's SSH user. */
    sshPrivateKey: pulumi.Input<string>;
    /** Seconds to keep retrying SSH while the server boots. */
    sshTimeoutSeconds: number;
    redisPort: number;
    /** Redis password (requirepass). */
    adminPassword: pulumi.Input<string>;
}

/** What host-facts.sh reports. */
export interface HostFacts {
    hostname: string;
    kernel: string;
    os: string;
    cpus: number;
    memoryMiB: number;
}

export class Server extends pulumi.ComponentResource {
    readonly facts: pulumi.Output<HostFacts>;
    readonly redisVersion: pulumi.Output<string>;
    /** The command that leaves Redis configured; dependants wait for it. */
    readonly redis: RemoteCommand;

    constructor(name: string, args: ServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:Server", name, {}, opts);
        const { node } = args;
        const connection = {
            host: node.host,
            port: node.sshPort,
            user: node.sshUser,
            privateKey: args.sshPrivateKey,
            dialTimeoutSeconds: args.sshTimeoutSeconds,
        };

        // The first command on a host also waits for it to answer SSH; the rest depend on it.
        const facts = new RemoteCommand(`${name}-facts`, { connection, create: readAsset("host-facts.sh") }, { parent: this });
        this.facts = facts.stdout.apply((s) => JSON.parse(s) as HostFacts);

        this.redis = new RemoteCommand(
            `${name}-redis`,
            {
                connection,
                create: readAsset("redis-server.sh"),
                delete: readAsset("redis-server-remove.sh"),
                environment: { REDIS_BIND_IP: node.privateIp, REDIS_PORT: String(args.redisPort) },
                stdin: pulumi.interpolate`${args.adminPassword}\n`,
            },
            { parent: this, dependsOn: [facts] },
        );
        this.redisVersion = this.redis.stdout.apply((s) => String(JSON.parse(s).version));

        this.registerOutputs({ facts: this.facts, redisVersion: this.redisVersion });
    }
}
