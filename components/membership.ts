// Membership: a dynamic resource that makes the running group match the configured nodes, after
// every sentinel ran and before the agreement is checked. Pulumi deletes a removed node's
// resources last, so without this the departing sentinel and replica would still run when the
// agreement is checked, and the remaining sentinels would remember them for ever (raising the
// majority a failover needs). When the member list changed (a node added, removed, replaced,
// marked down or back), it:
//   1. hands the master role over when the master is leaving (its fellow leavers get
//      replica-priority 0 first, then a planned failover: planned-failover.ts);
//   2. stops Redis and Sentinel on every leaving server (assets/node-retire.sh), giving up on
//      one that does not answer SSH within a bounded time, with a warning;
//   3. makes each sentinel that still knows a sentinel or replica outside the config forget it
//      (SENTINEL RESET), one sentinel at a time, waiting until it sees the live members again
//      before the next: resetting all at once leaves no sentinel able to fail over meanwhile.
// A node marked down stays a member: it is neither stopped nor forgotten.
import * as pulumi from "@pulumi/pulumi";
import { engineLog } from "./provider-log";
import type Redis from "ioredis";
import { discoverMaster } from "./discovery";
import { asAdmin, fieldsOf, healthyFlags, secretTls, type TlsClientOptions } from "./redis-client";
import { groupSettled, plannedFailover } from "./planned-failover";
import { sshRun } from "./ssh";
import { type Look, waitUntil } from "./waiter";

/** A node as the membership sees it: where its services listen, and how to reach it over SSH. */
export interface Member {
    name: string;
    ip: string;
    redisPort: number;
    sentinelPort: number;
    down: boolean;
    ssh: { host: string; port: number; user: string; hostKey?: string };
}

export interface MembershipInputs {
    masterName: string;
    members: Member[];
    /** Redis's and Sentinel's `admin` user. */
    adminPassword: string;
    sshPrivateKey: string;
    /** assets/node-retire.sh as sent (with lib/common.sh), and the RUNTIME and SERVER it needs. */
    retireScript: string;
    runtime: string;
    /** Set for Valkey only (absent: redis, as in stacks from before it). */
    server?: string;
    timeoutSeconds: number;
    /** With tls.enabled. */
    tls?: TlsClientOptions;
    providerVersion: string;
}

export interface MembershipResult {
    /** Leaving nodes whose services were stopped, and those that did not answer. */
    retired: string[];
    unreachable: string[];
    /** The sentinels that were reset, in order. */
    reset: string[];
    /** The node that gave up the master role, if one did. */
    handedOver?: string;
    seconds: number;
}

const PROVIDER_VERSION = "1";
/** How long to try to reach a leaving server over SSH. */
const RETIRE_DIAL_SECONDS = 10;

/** Reconciles the running group with `inputs.members`; `previous` is the member list of the last run. Self-contained: serialized into the provider. */
export async function reconcile(previous: Member[], inputs: MembershipInputs): Promise<MembershipResult> {
    const log = engineLog("membership");
    const warn = engineLog("membership", "warning");
    const started = Date.now();
    const live = inputs.members.filter((m) => !m.down);
    const leaving = previous.filter((o) => !inputs.members.some((m) => m.name === o.name && m.ip === o.ip));
    const result: MembershipResult = { retired: [], unreachable: [], reset: [], seconds: 0 };

    const ask = <T>(host: string, port: number, f: (c: Redis) => Promise<T>) => asAdmin(host, port, inputs.adminPassword, f, inputs.tls);
    const isMember = (addr: string, port: (m: Member) => number) => inputs.members.some((m) => `${m.ip}:${port(m)}` === addr);
    const staying = (addr: string) => live.some((m) => `${m.ip}:${m.redisPort}` === addr);
    // Settled: every live sentinel monitors the same master, one that stays, no failover in progress.
    const settled = groupSettled(
        live.map((m) => ({ name: m.name, ip: m.ip, port: m.sentinelPort })),
        inputs.masterName,
        inputs.adminPassword,
        staying,
        inputs.tls,
    );

    // 1. A leaving master hands its role to a staying replica first.
    const sentinelsOf = (members: Member[]) => members.map((m) => ({ host: m.ip, port: m.sentinelPort }));
    const master = await discoverMaster(sentinelsOf(live), inputs.masterName, inputs.adminPassword, { username: "admin", majority: true, timeoutMs: 5000, tls: inputs.tls });
    const leavingMaster = leaving.find((o) => o.ip === master?.host && o.redisPort === master.port);
    if (leavingMaster) {
        const barred: Member[] = [];
        for (const o of leaving.filter((x) => x !== leavingMaster)) {
            if (await ask(o.ip, o.redisPort, (c) => c.call("CONFIG", "SET", "replica-priority", "0")).then(() => true, () => false)) barred.push(o);
        }
        // Sentinel reads a replica's priority from its INFO (every second; 10 s in Docker mode): wait until all have.
        if (barred.length > 0) {
            await waitUntil({
                what: "membership",
                failure: "the sentinels did not see the leaving replicas' priority 0",
                timeoutSeconds: inputs.timeoutSeconds,
                look: async (): Promise<Look<object>> => {
                    for (const s of live) {
                        const replicas = await ask(s.ip, s.sentinelPort, async (c) => ((await c.call("SENTINEL", "REPLICAS", inputs.masterName)) as unknown[][]).map(fieldsOf)).catch(() => []);
                        const eligible = barred.find((o) => replicas.some((r) => r.ip === o.ip && Number(r.port) === o.redisPort && r["slave-priority"] !== "0"));
                        if (eligible) return { done: false, why: `sentinel ${s.name} still sees ${eligible.name} as a candidate for promotion` };
                    }
                    return { done: true, found: {}, says: `no leaving replica can be promoted: ${barred.map((o) => o.name).join(", ")}` };
                },
            });
        }
        log(`${leavingMaster.name} is leaving and is the master: a planned failover (writes held, SENTINEL FAILOVER)`);
        const instance = (m: Member) => ({ name: m.name, ip: m.ip, port: m.redisPort });
        await plannedFailover({
            masterName: inputs.masterName,
            sentinels: live.map((m) => ({ name: m.name, ip: m.ip, port: m.sentinelPort })),
            master: instance(leavingMaster),
            replicas: live.map(instance),
            adminPassword: inputs.adminPassword,
            tls: inputs.tls,
            timeoutSeconds: inputs.timeoutSeconds,
            settled,
        });
        result.handedOver = leavingMaster.name;
    }

    // 2. Leaving servers stop their services, or they would be found again at once.
    for (const o of leaving) {
        try {
            await sshRun(
                { host: o.ssh.host, port: o.ssh.port, user: o.ssh.user, hostKey: o.ssh.hostKey, privateKey: inputs.sshPrivateKey, dialTimeoutSeconds: RETIRE_DIAL_SECONDS },
                inputs.retireScript,
                { RUNTIME: inputs.runtime, ...(inputs.server ? { SERVER: inputs.server } : {}) },
                undefined,
            );
            log(`${o.name} (${o.ip}) left: its Redis and Sentinel are stopped`);
            result.retired.push(o.name);
        } catch (e) {
            if (!(e as { unreachable?: boolean }).unreachable) throw e;
            warn(
                `${o.name} (${o.ip}) left but does not answer SSH: its services could not be stopped. The sentinels forget it now; ` +
                    `if that server comes back with redis-server or redis-sentinel running, stop them there (README "Day 2").`,
            );
            result.unreachable.push(o.name);
        }
    }

    // 3. Each sentinel in turn forgets what is not a member, then sees the live members again.
    // A sentinel reset while it still follows another master would lose the group for good (it
    // learns of failovers from its peers, whom it forgets): first every live sentinel must name
    // the same master, one that stays.
    const agreed = await waitUntil({ what: "membership", failure: "the sentinels did not settle on a master that stays", timeoutSeconds: inputs.timeoutSeconds, look: settled });
    const view = (s: Member) =>
        ask(s.ip, s.sentinelPort, async (c) => ({
            sentinels: ((await c.call("SENTINEL", "SENTINELS", inputs.masterName)) as unknown[][]).map(fieldsOf),
            replicas: ((await c.call("SENTINEL", "REPLICAS", inputs.masterName)) as unknown[][]).map(fieldsOf),
            master: fieldsOf((await c.call("SENTINEL", "MASTER", inputs.masterName)) as unknown[]),
        }));
    for (const s of live) {
        const before = await view(s);
        const strangers = [
            ...before.sentinels.filter((x) => !isMember(`${x.ip}:${x.port}`, (m) => m.sentinelPort)).map((x) => `sentinel ${x.ip}:${x.port}`),
            ...before.replicas.filter((x) => !isMember(`${x.ip}:${x.port}`, (m) => m.redisPort)).map((x) => `replica ${x.ip}:${x.port}`),
        ];
        if (strangers.length === 0) continue;
        log(`sentinel ${s.name} still knows ${strangers.join(", ")}: SENTINEL RESET ${inputs.masterName}`);
        await ask(s.ip, s.sentinelPort, (c) => c.call("SENTINEL", "RESET", inputs.masterName));
        result.reset.push(s.name);
        await waitUntil({
            what: "membership",
            failure: `sentinel ${s.name} did not find the group again after SENTINEL RESET`,
            timeoutSeconds: inputs.timeoutSeconds,
            look: async (): Promise<Look<object>> => {
                const v = await view(s).catch((e: Error) => e);
                if (v instanceof Error) return { done: false, why: `sentinel ${s.name} does not answer: ${v.message}` };
                const healthy = (list: Record<string, string>[], addr: string) => list.some((x) => `${x.ip}:${x.port}` === addr && healthyFlags(x.flags));
                const masterAddr = `${v.master.ip}:${v.master.port}`;
                if (masterAddr !== agreed.addr) return { done: false, why: `sentinel ${s.name} names ${masterAddr}, not ${agreed.addr}` };
                const missing = [
                    ...live.filter((m) => m !== s && !healthy(v.sentinels, `${m.ip}:${m.sentinelPort}`)).map((m) => `sentinel ${m.name}`),
                    ...live.filter((m) => `${m.ip}:${m.redisPort}` !== masterAddr && !healthy(v.replicas, `${m.ip}:${m.redisPort}`)).map((m) => `replica ${m.name}`),
                ];
                return missing.length === 0
                    ? { done: true, found: {}, says: `sentinel ${s.name} sees the ${live.length - 1} other sentinels and the replicas again` }
                    : { done: false, why: `sentinel ${s.name} does not see ${missing.join(", ")} yet` };
            },
        });
    }
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
    return result;
}

const provider: pulumi.dynamic.ResourceProvider<MembershipInputs, Omit<MembershipInputs, "adminPassword" | "sshPrivateKey" | "tls"> & MembershipResult> = {
    async diff(_id, olds, news) {
        const compared = ["masterName", "members", "runtime", "server", "providerVersion"] as const;
        return { changes: compared.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
    },
    async create(inputs) {
        const { adminPassword: _a, sshPrivateKey: _k, tls: _t, ...kept } = inputs;
        return { id: `${inputs.masterName}-membership`, outs: { ...kept, ...(await reconcile([], inputs)) } };
    },
    async update(_id, olds, news) {
        const { adminPassword: _a, sshPrivateKey: _k, tls: _t, ...kept } = news;
        return { outs: { ...kept, ...(await reconcile(olds.members, news)) } };
    },
};

export interface MembershipArgs {
    masterName: string;
    members: pulumi.Input<pulumi.Input<Member>[]>;
    adminPassword: pulumi.Input<string>;
    sshPrivateKey: pulumi.Input<string>;
    retireScript: string;
    runtime: string;
    server?: string;
    timeoutSeconds: number;
    tls?: pulumi.Input<TlsClientOptions>;
}

/** Makes the running group match the configured members (see the top of this file). */
export class Membership extends pulumi.dynamic.Resource {
    declare readonly reset: pulumi.Output<string[]>;
    declare readonly retired: pulumi.Output<string[]>;

    constructor(name: string, args: MembershipArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                sshPrivateKey: pulumi.secret(args.sshPrivateKey),
                ...secretTls(args.tls),
                providerVersion: PROVIDER_VERSION,
                retired: undefined,
                unreachable: undefined,
                reset: undefined,
                handedOver: undefined,
                seconds: undefined,
            },
            opts,
        );
    }
}
