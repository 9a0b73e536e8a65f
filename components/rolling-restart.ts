// RollingRestart: a dynamic resource that restarts the nodes that need it, in the order that
// keeps the group writable and loses no acknowledged write: every replica first, one at a time,
// each back, linked and seen healthy by every sentinel before the next; then the master, after a
// planned failover (planned-failover.ts). What a node needs (a setting Redis reads only at start,
// a pinned package version, a replaced binary, a raised rollingRestart) is read from the node
// itself by assets/rolling-restart.sh, so a run that was interrupted and is run again restarts
// only the nodes that still need it. It runs after the membership and before the agreement.
import * as pulumi from "@pulumi/pulumi";
import { discoverMaster } from "./discovery";
import type { Member } from "./membership";
import { plannedFailover } from "./planned-failover";
import { engineLog } from "./provider-log";
import { asAdmin, fieldsOf, healthyFlags, secretTls, type TlsClientOptions } from "./redis-client";
import { sshRun } from "./ssh";
import { type Look, waitUntil } from "./waiter";

export interface RollingRestartInputs {
    masterName: string;
    members: Member[];
    /** What the nodes should run: the script's environment (RESTART_SETTINGS, PACKAGE_VERSION, …). */
    wanted: Record<string, string>;
    /** assets/rolling-restart.sh as sent (with lib/common.sh). */
    script: string;
    adminPassword: string;
    /** Previous admin password while it rotates (the nodes may know only that one), or "". */
    previousAdminPassword: string;
    sshPrivateKey: string;
    timeoutSeconds: number;
    sshTimeoutSeconds: number;
    /** With tls.enabled. */
    tls?: TlsClientOptions;
    providerVersion: string;
}

export interface RollingRestartResult {
    /** The nodes restarted, in order. */
    restarted: string[];
    /** The node that handed the master role over before its restart, if one did. */
    handedOver?: string;
    /** How long the planned failover held writes. */
    pausedSeconds?: number;
    seconds: number;
    /** What each live node runs once the rollout is done (read from the node: the outputs report it). */
    runs: Record<string, Runs>;
}

/** The server's version as it answers, and the installed Debian version of each of its packages. */
export interface Runs {
    version: string;
    packages: Record<string, string>;
}

// 2: reports what runs (a stack made with 1 reads it from its nodes once, restarting nothing).
const PROVIDER_VERSION = "2";

/** Restarts what needs it (see the top of this file). Self-contained: serialized into the provider. */
export async function rollOut(inputs: RollingRestartInputs): Promise<RollingRestartResult> {
    const log = engineLog("rolling restart");
    const started = Date.now();
    const live = inputs.members.filter((m) => !m.down);
    const result: RollingRestartResult = { restarted: [], seconds: 0, runs: {} };
    const stdin = `admin ${inputs.adminPassword}\n${inputs.previousAdminPassword ? `previous-admin ${inputs.previousAdminPassword}\n` : ""}`;
    const run = async (m: Member, step: "check" | "restart") => {
        const target = { host: m.ssh.host, port: m.ssh.port, user: m.ssh.user, hostKey: m.ssh.hostKey, privateKey: inputs.sshPrivateKey, dialTimeoutSeconds: inputs.sshTimeoutSeconds };
        const out = await sshRun(target, inputs.script, { ...inputs.wanted, STEP: step }, stdin);
        const said = JSON.parse(out.stdout.trim().split("\n").pop()!) as { needs: string[]; restarted: string[]; runs: Runs };
        result.runs[m.name] = said.runs;
        return said;
    };

    // The checks only read, so all nodes at once; the order below stays the members' order.
    const checked = await Promise.all(live.map(async (member) => ({ member, needs: (await run(member, "check")).needs })));
    const needing = checked.filter((c) => c.needs.length > 0);
    if (needing.length === 0) {
        result.seconds = Math.round((Date.now() - started) / 100) / 10;
        return result;
    }
    const master = await discoverMaster(live.map((m) => ({ host: m.ip, port: m.sentinelPort })), inputs.masterName, inputs.adminPassword, { username: "admin", majority: true, timeoutMs: 5000, tls: inputs.tls });
    if (!master) throw new Error("no majority of the sentinels names a master: a rolling restart needs a healthy group; run pulumi up again once the sentinels agree");
    const isMaster = (m: Member) => m.ip === master.host && m.redisPort === master.port;
    // Only a restart of the master's Redis needs a handover (assets/rolling-restart.sh prefixes each need with its unit).
    const restartsRedis = (needs: string[]) => needs.some((x) => x.startsWith("redis-server:"));
    const order = [...needing.filter((n) => !isMaster(n.member)), ...needing.filter((n) => isMaster(n.member))];
    log(`${order.length} of ${live.length} nodes need a restart, replicas first: ${order.map((n) => `${n.member.name} (${n.needs.join("; ")})`).join(", ")}`);

    /**
     * The node is back: every live sentinel sees its Redis as a healthy, linked replica (unless it
     * is still the master: only its sentinel restarted) and sees its sentinel.
     */
    const backInGroup = (m: Member, stillMaster: boolean) => async (): Promise<Look<object>> => {
        for (const s of live) {
            const v = await asAdmin(s.ip, s.sentinelPort, inputs.adminPassword, async (c) => ({
                replicas: ((await c.call("SENTINEL", "REPLICAS", inputs.masterName)) as unknown[][]).map(fieldsOf),
                sentinels: ((await c.call("SENTINEL", "SENTINELS", inputs.masterName)) as unknown[][]).map(fieldsOf),
            }), inputs.tls).catch((e: Error) => e);
            if (v instanceof Error) return { done: false, why: `sentinel ${s.name} does not answer: ${v.message}` };
            const replica = v.replicas.find((r) => r.ip === m.ip && Number(r.port) === m.redisPort);
            if (!stillMaster && (!replica || !healthyFlags(replica.flags) || replica["master-link-status"] !== "ok")) {
                return { done: false, why: `sentinel ${s.name} does not see ${m.name} as a linked replica yet (${replica?.flags ?? "unknown"})` };
            }
            if (s !== m && !v.sentinels.some((x) => x.ip === m.ip && Number(x.port) === m.sentinelPort && healthyFlags(x.flags))) {
                return { done: false, why: `sentinel ${s.name} does not see the sentinel of ${m.name} yet` };
            }
        }
        return { done: true, found: {}, says: `${m.name} is back: every sentinel sees ${stillMaster ? "its sentinel" : "it as a linked replica, and its sentinel"}` };
    };

    for (const { member, needs } of order) {
        const handOver = isMaster(member) && restartsRedis(needs);
        if (handOver) {
            log(`${member.name} is the master: a planned failover first (writes held, SENTINEL FAILOVER)`);
            const instance = (m: Member) => ({ name: m.name, ip: m.ip, port: m.redisPort });
            const handover = await plannedFailover({
                masterName: inputs.masterName,
                sentinels: live.map((m) => ({ name: m.name, ip: m.ip, port: m.sentinelPort })),
                master: instance(member),
                replicas: live.map(instance),
                adminPassword: inputs.adminPassword,
                tls: inputs.tls,
                timeoutSeconds: inputs.timeoutSeconds,
            });
            result.handedOver = member.name;
            result.pausedSeconds = handover.pausedSeconds;
        }
        const t0 = Date.now();
        const done = await run(member, "restart");
        await waitUntil({ what: "rolling restart", failure: `${member.name} did not come back into the group`, timeoutSeconds: inputs.timeoutSeconds, look: backInGroup(member, isMaster(member) && !handOver) });
        log(`${member.name}: restarted ${done.restarted.join(" and ") || "nothing (already done)"} in ${Math.round((Date.now() - t0) / 100) / 10} s`);
        if (done.restarted.length > 0) result.restarted.push(member.name);
    }
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
    return result;
}

type Outs = Omit<RollingRestartInputs, "adminPassword" | "previousAdminPassword" | "sshPrivateKey" | "tls"> & RollingRestartResult;

const provider: pulumi.dynamic.ResourceProvider<RollingRestartInputs, Outs> = {
    async diff(_id, olds, news) {
        const compared = ["masterName", "members", "wanted", "script", "providerVersion"] as const;
        return { changes: compared.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
    },
    async create(inputs) {
        const { adminPassword: _a, previousAdminPassword: _p, sshPrivateKey: _k, tls: _t, ...kept } = inputs;
        return { id: `${inputs.masterName}-rolling-restart`, outs: { ...kept, ...(await rollOut(inputs)) } };
    },
    async update(_id, _olds, news) {
        const { adminPassword: _a, previousAdminPassword: _p, sshPrivateKey: _k, tls: _t, ...kept } = news;
        return { outs: { ...kept, ...(await rollOut(news)) } };
    },
};

export interface RollingRestartArgs {
    masterName: string;
    members: pulumi.Input<pulumi.Input<Member>[]>;
    wanted: Record<string, string>;
    script: string;
    adminPassword: pulumi.Input<string>;
    previousAdminPassword: pulumi.Input<string>;
    sshPrivateKey: pulumi.Input<string>;
    timeoutSeconds: number;
    sshTimeoutSeconds: number;
    tls?: pulumi.Input<TlsClientOptions>;
}

/** Restarts the nodes that need it, replicas first, the master last (see the top of this file). */
export class RollingRestart extends pulumi.dynamic.Resource {
    declare readonly restarted: pulumi.Output<string[]>;
    declare readonly runs: pulumi.Output<Record<string, Runs>>;

    constructor(name: string, args: RollingRestartArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                previousAdminPassword: pulumi.secret(args.previousAdminPassword),
                sshPrivateKey: pulumi.secret(args.sshPrivateKey),
                ...secretTls(args.tls),
                providerVersion: PROVIDER_VERSION,
                restarted: undefined,
                handedOver: undefined,
                pausedSeconds: undefined,
                seconds: undefined,
                runs: undefined,
            },
            opts,
        );
    }
}
