// The docker runtime: one container for Redis and one for Sentinel per node, through a Docker
// provider per host over SSH. Host networking, configuration/data/log directories bind-mounted
// from the host (the same files the packages runtime writes, written by the same scripts), a
// restart policy, and a memory limit from maxmemory with headroom. Sentinel keeps owning
// sentinel.conf across container restarts because the whole /etc/redis directory is mounted
// (Sentinel rewrites its file by renaming a new one into place).
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { script } from "./assets";
import type { NodeConfig, ResolvedConfig } from "./config";
import { RemoteCommand, type ConnectionArgs } from "./remote-command";
import type { Runtime, Service } from "./runtime";

export interface ContainerSpec {
    name: string;
    image: string;
    command: string[];
    networkMode: "host";
    restart: "unless-stopped";
    /** MiB. */
    memory: number;
    volumes: { hostPath: string; containerPath: string }[];
}

const MIB = 1024 * 1024;
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: MIB, gb: 1024 * MIB };

/** maxmemory ("2gb", "512mb", "1000000") in bytes. */
export function bytesOf(size: string): number {
    const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(size);
    if (!m) throw new Error(`not a size: ${size}`);
    return Number(m[1]) * UNITS[(m[2] ?? "b").toLowerCase()];
}

/**
 * What a container runs: the image's entrypoint drops to uid 999 for redis-server and
 * redis-sentinel. Under Docker there is no systemd to notify, so the command line turns
 * supervision off; everything else comes from the same configuration files as with packages.
 */
export function containerSpec(cfg: ResolvedConfig, service: Service): ContainerSpec {
    const volumes = ["/etc/redis", "/var/lib/redis", "/var/log/redis"].map((p) => ({ hostPath: p, containerPath: p }));
    const common = { image: cfg.docker.image, networkMode: "host" as const, restart: "unless-stopped" as const, volumes };
    if (service === "redis") {
        const limit = Math.ceil((bytesOf(cfg.redis.maxmemory) * (1 + cfg.docker.memoryHeadroomPercent / 100)) / MIB) + 64;
        return { ...common, name: "redis-ha-redis", command: ["redis-server", "/etc/redis/redis.conf", "--supervised", "no", "--daemonize", "no"], memory: limit };
    }
    return { ...common, name: "redis-ha-sentinel", command: ["redis-sentinel", "/etc/redis/sentinel.conf", "--supervised", "no", "--daemonize", "no"], memory: 128 };
}

/** The Docker provider's address for a node. */
export function dockerHost(node: NodeConfig): string {
    return `ssh://${node.sshUser}@${node.host}:${node.sshPort}`;
}

export class DockerRuntime implements Runtime {
    readonly name = "docker" as const;
    readonly packages: string[];
    readonly heldUnits: string[] = [];
    readonly scriptEnv = { RUNTIME: "docker" };
    private readonly providers = new Map<string, docker.Provider>();
    private readonly images = new Map<string, pulumi.Input<string>>();

    constructor(private readonly cfg: ResolvedConfig) {
        // redis-cli on the host: the scripts talk to the containers through host networking.
        this.packages = ["redis-tools", ...(cfg.docker.installEngine ? ["docker.io"] : [])];
    }

    prepare(node: NodeConfig, connection: ConnectionArgs, after: pulumi.Resource[], parent: pulumi.Resource): pulumi.Resource[] {
        const host = new RemoteCommand(`${node.name}-docker-host`, { connection, create: script("docker-host.sh") }, { parent, dependsOn: after });
        const provider = new docker.Provider(`${node.name}-docker`, { host: dockerHost(node), sshOpts: this.cfg.docker.sshOpts }, { parent, dependsOn: [host] });
        this.providers.set(node.name, provider);
        if (this.cfg.docker.preloaded) {
            this.images.set(node.name, this.cfg.docker.image);
            return [host];
        }
        const image = new docker.RemoteImage(`${node.name}-redis-image`, { name: this.cfg.docker.image, keepLocally: true }, { parent, provider, dependsOn: [host] });
        this.images.set(node.name, image.imageId);
        return [host, image];
    }

    /** The image a node's containers run (its id once pulled), for its ContainerGate. */
    imageOf(node: NodeConfig): pulumi.Input<string> {
        return this.images.get(node.name)!;
    }

    start(service: Service, node: NodeConfig, configured: pulumi.Resource, parent: pulumi.Resource, after?: pulumi.Input<pulumi.Resource[]>): pulumi.Resource {
        const spec = containerSpec(this.cfg, service);
        return new docker.Container(
            `${node.name}-${service}-container`,
            {
                name: spec.name,
                image: this.images.get(node.name)!,
                command: spec.command,
                networkMode: spec.networkMode,
                restart: spec.restart,
                memory: spec.memory,
                volumes: spec.volumes,
                // The container must never be replaced by surprise: its data lives on the host.
                mustRun: true,
            },
            {
                parent,
                provider: this.providers.get(node.name),
                dependsOn: after === undefined ? [configured] : pulumi.output(after).apply((a) => [configured, ...a]),
                // A new container cannot start beside the old one (same name, same ports on the host
                // network): the old one goes first, one node at a time (`after`, container-gate.ts).
                deleteBeforeReplace: true,
            },
        );
    }
}
