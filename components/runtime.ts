// The runtime seam: how Redis and Sentinel run on a node. Everything else (configuration, ACL,
// kernel tuning, sentinel agreement, VIPs, outputs) is the same for both implementations.
import * as pulumi from "@pulumi/pulumi";
import type { NodeConfig, Server } from "./config";
import type { ConnectionArgs } from "./remote-command";
import { serverPackages } from "./render";

export type Service = "redis" | "sentinel";

export interface Runtime {
    readonly name: "packages" | "docker";
    /** Debian packages every node needs. */
    readonly packages: string[];
    /** Services of those packages that must not start before our configuration exists (unit = package name). */
    readonly heldUnits: string[];
    /** Environment for the server scripts (RUNTIME tells assets/lib/common.sh how to restart a service). */
    readonly scriptEnv: Record<string, string>;
    /** Host preparation beyond packages; returns what later steps must wait for. */
    prepare(node: NodeConfig, connection: ConnectionArgs, after: pulumi.Resource[], parent: pulumi.Resource): pulumi.Resource[];
    /**
     * Runs a service once its configuration is written (`configured`) and `after` is done (with
     * docker: the gate or container before it in the rolling order). Debian's units are restarted
     * by the scripts themselves, so the packages runtime returns nothing; the docker runtime
     * returns the container.
     */
    start(service: Service, node: NodeConfig, configured: pulumi.Resource, parent: pulumi.Resource, after?: pulumi.Input<pulumi.Resource[]>): pulumi.Resource | undefined;
}

/** Debian's packages of the server (redis-server and redis-sentinel, or Valkey's) with their own systemd units. */
export function packagesRuntime(server: Server): Runtime {
    return {
        name: "packages",
        packages: serverPackages(server),
        heldUnits: [`${server}-server`, `${server}-sentinel`],
        // SERVER only for Valkey: a Redis stack keeps the environment it always had.
        scriptEnv: { RUNTIME: "packages", ...serverEnv(server) },
        prepare: () => [],
        start: () => undefined,
    };
}

/** What tells the server scripts which server runs (SERVER in assets/lib/common.sh; unset means redis). */
export const serverEnv = (server: Server): Record<string, string> => (server === "redis" ? {} : { SERVER: server });
