// ServerPrep: gets one bare-metal host ready for Redis. Waits for SSH and records what the host
// is, installs the packages that are missing (which depend on the runtime), tunes the kernel as
// Redis recommends, and lets the runtime prepare the rest.
import * as pulumi from "@pulumi/pulumi";
import { script } from "./assets";
import { ownOptions } from "./component-options";
import type { NodeConfig, ResolvedConfig } from "./config";
import { ConnectionArgs, RemoteCommand } from "./remote-command";
import type { Runtime } from "./runtime";

export interface ServerPrepArgs {
    node: NodeConfig;
    connection: ConnectionArgs;
    kernel: ResolvedConfig["kernel"];
    runtime: Runtime;
    /** The Debian version of the Redis packages to install (redis.packageVersion), if pinned. */
    packageVersion?: string;
    /** Where the server's packages come from (redis.packageSource); an apt repository is added first. */
    packageSource: ResolvedConfig["redis"]["packageSource"];
    /**
     * Packages other steps own (each its set name, list, and the units that must not start on
     * install), installed in this step's apt run so that a host needs only one: the proxy's on
     * proxy nodes, the exporter's with metrics. Their own steps find them present.
     */
    alsoInstall?: PackageSet[];
}

/** Packages a step installs with packages.sh, recorded under `set` (removing the step removes them). */
export interface PackageSet {
    set: string;
    packages: string[];
    /** Services that must not start before the step's configuration exists. */
    heldUnits?: string[];
}

/** What host-facts.sh reports. */
export interface HostFacts {
    hostname: string;
    kernel: string;
    os: string;
    cpus: number;
    memoryMiB: number;
}

/** The kernel settings in force after tuning, as kernel-tuning.sh reads them back. */
export interface KernelReport {
    overcommitMemory: string;
    somaxconn: string;
    swappiness: string;
    transparentHugePages: string;
    thpDefrag: string;
    warnings: string[];
}

export class ServerPrep extends pulumi.ComponentResource {
    readonly facts: pulumi.Output<HostFacts>;
    readonly kernel: pulumi.Output<KernelReport>;
    readonly packageVersions: pulumi.Output<Record<string, string>>;
    /** Everything later steps on this host must wait for. */
    readonly done: pulumi.Resource[];

    constructor(name: string, args: ServerPrepArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:ServerPrep", name, {}, ownOptions(opts));
        const { connection } = args;

        // What comes before (the SSH key step) has waited for the host to answer SSH: facts,
        // packages and the kernel run side by side.
        const facts = new RemoteCommand(`${name}-facts`, { connection, create: script("host-facts.sh") }, { parent: this, dependsOn: opts?.dependsOn });
        this.facts = facts.stdout.apply((s) => JSON.parse(s) as HostFacts);

        const also = args.alsoInstall ?? [];
        // An apt repository of the user's (redis.packageSource) is added, and its index read, first.
        const src = args.packageSource;
        const source =
            src.type === "apt"
                ? new RemoteCommand(
                      `${name}-apt-source`,
                      {
                          connection,
                          create: script("apt-source.sh"),
                          delete: script("apt-source-remove.sh"),
                          environment: { REPO_URL: src.url!, REPO_SUITE: src.suite!, REPO_COMPONENT: src.component, REPO_KEY: src.signingKey!, PACKAGES: args.runtime.packages.join(" ") },
                      },
                      { parent: this, dependsOn: opts?.dependsOn },
                  )
                : undefined;
        const packages = new RemoteCommand(
            `${name}-packages`,
            {
                connection,
                create: script("packages.sh"),
                delete: script("packages-remove.sh"),
                environment: {
                    PACKAGES: args.runtime.packages.join(" "),
                    PACKAGE_SET: "redis",
                    HOLD_UNITS: [...args.runtime.heldUnits, ...also.flatMap((a) => a.heldUnits ?? [])].join(" "),
                    // Only when pinned: an unpinned stack keeps the environment it always had.
                    ...(args.packageVersion ? { PACKAGE_VERSION: args.packageVersion } : {}),
                    ...(also.length > 0 ? { ALSO_SETS: also.map((a) => `${a.set}=${a.packages.join(",")}`).join(" ") } : {}),
                },
            },
            { parent: this, dependsOn: source ? [source] : opts?.dependsOn },
        );
        this.packageVersions = packages.stdout.apply((s) => JSON.parse(s).versions as Record<string, string>);

        const k = args.kernel;
        const kernel = new RemoteCommand(
            `${name}-kernel`,
            {
                connection,
                create: script("kernel-tuning.sh"),
                delete: script("kernel-tuning-remove.sh"),
                environment: {
                    THP: k.transparentHugePages,
                    OVERCOMMIT: String(k.overcommitMemory),
                    SOMAXCONN: String(k.somaxconn),
                    SWAPPINESS: k.swappiness === undefined ? "" : String(k.swappiness),
                },
            },
            { parent: this, dependsOn: opts?.dependsOn },
        );
        this.kernel = kernel.stdout.apply((s) => {
            const report = JSON.parse(s) as KernelReport;
            for (const w of report.warnings) pulumi.log.warn(`${args.node.name}: ${w}`, this);
            return report;
        });

        this.done = [packages, kernel, ...args.runtime.prepare(args.node, connection, [packages, kernel], this)];
        this.registerOutputs({ facts: this.facts, kernel: this.kernel, packageVersions: this.packageVersions });
    }
}
