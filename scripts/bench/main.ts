// `npm run bench`: every speed figure redis-ha claims, from one run on this machine, as
// min / median / max of BENCH_N trials (default 5), side by side with its yardstick:
// 1. deploys on fresh lab hosts: `pulumi up` against scripts/hand-deploy.sh (3 nodes + proxy),
//    a no-op `pulumi up` and its SSH sessions, and `pulumi up` of 5 nodes;
// 2. failovers: seconds without a successful write after the master is taken down each way,
//    through Sentinel and through the write VIP, with the stack outputs' client options as is
//    (plus the retryStrategy the README tells applications to add);
// 3. redis-benchmark through the write VIP against straight to the master (-P 1 and -P 16);
// 4. with tls.enabled: the failovers of 2., and redis-benchmark with TLS against in clear on the
//    same master (a plaintext port opened for the comparison).
// BENCH_PARTS=deploy,failover,throughput,tls (the default) chooses parts. Tears the lab down at the
// end, pass or fail, and removes the stacks it made.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { majority } from "../../components/config";
import { discoverMaster } from "../../components/discovery";
import { asAdmin } from "../../components/redis-client";
import { benchCompare, benchVip, tlsBenchArgs } from "../drill/bench";
import { Mode, MODES, runDrill } from "../drill/drill";
import { drillTarget } from "../drill/stack";
import { LabDeploys } from "./deploy";
import { fmt, spread } from "./stats";

const N = Number(process.env.BENCH_N ?? 5);
const PARTS = (process.env.BENCH_PARTS ?? "deploy,failover,throughput,tls").split(",");
const STACK = "lab-bench";
const STACK_TLS = "lab-bench-tls";
const log = (l: string) => console.error(`[bench] ${l}`);
const ratio = (a: number, b: number) => (a / b).toFixed(2);

async function main() {
    const out = (l = "") => console.log(l);
    const cpu = os.cpus();
    out(`Machine: ${cpu.length} × ${cpu[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}; n = ${N} per figure`);
    out();

    const three = new LabDeploys(3);
    try {
        if (PARTS.includes("deploy")) deploys(three, out);
        if (PARTS.includes("failover") || PARTS.includes("throughput")) {
            three.pulumiFresh(STACK);
            const target = drillTarget(STACK);
            if (PARTS.includes("failover")) await failovers(target, out);
            if (PARTS.includes("throughput")) await throughput(target, out);
        }
        if (PARTS.includes("tls")) {
            three.pulumiFresh(STACK_TLS, { "redis-ha:tls.enabled": "true" });
            const target = drillTarget(STACK_TLS);
            out("With `tls.enabled`:");
            out();
            await failovers(target, out);
            await tlsThroughput(target, out);
        }
    } finally {
        three.down(); // also after a failure: no lab left running, no stack describing gone hosts
    }
}

/** 1. Deploys. Hand script and pulumi alternate, so that both see the same machine load. */
function deploys(three: LabDeploys, out: (l?: string) => void) {
    const hand: number[] = [];
    const fresh: number[] = [];
    const noop: number[] = [];
    const noopSsh: number[] = [];
    for (let i = 1; i <= N; i++) {
        hand.push(three.hand());
        fresh.push(three.pulumiFresh(STACK));
        const n = three.noop(STACK);
        noop.push(n.seconds);
        noopSsh.push(n.sshSessions);
        log(`deploy ${i}/${N}: hand ${hand[i - 1].toFixed(1)} s, pulumi ${fresh[i - 1].toFixed(1)} s, no-op ${n.seconds.toFixed(1)} s (${n.sshSessions} SSH sessions)`);
    }
    const five = new LabDeploys(5);
    const fresh5: number[] = [];
    for (let i = 1; i <= N; i++) {
        fresh5.push(five.pulumiFresh(`${STACK}5`));
        log(`deploy 5 nodes ${i}/${N}: ${fresh5[i - 1].toFixed(1)} s`);
    }
    five.down();
    const [h, f, o, f5] = [spread(hand), spread(fresh), spread(noop), spread(fresh5)];
    out("| deploy (fresh hosts) | seconds min / median / max | ratio of medians |");
    out("|---|---|---|");
    out(`| hand script, 3 nodes + proxy, host after host | ${fmt(h)} | 1.00 |`);
    out(`| \`pulumi up\`, 3 nodes + proxy | ${fmt(f)} | ${ratio(f.median, h.median)} of the hand script |`);
    out(`| \`pulumi up\`, 5 nodes + proxy | ${fmt(f5)} | ${ratio(f5.median, f.median)} of 3 nodes |`);
    out(`| no-op \`pulumi up\` (SSH sessions: ${Math.max(...noopSsh)} at most) | ${fmt(o)} | ${ratio(o.median, f.median)} of a fresh one |`);
    out();
}

/** 2. Failovers, on a fresh 3-node stack; the modes take turns. */
async function failovers(target: ReturnType<typeof drillTarget>, out: (l?: string) => void) {
    const outage: Record<string, number[]> = {};
    const totals: Record<string, { attempted: number; failed: number; lost: number }> = {};
    for (let i = 1; i <= N; i++) {
        for (const mode of MODES) {
            const [r] = await runDrill(target, [mode], { windowSeconds: 8, clients: "outputs" });
            for (const p of r.paths) {
                (outage[`${mode} ${p.path}`] ??= []).push(p.outageSeconds);
                const t = (totals[`${mode} ${p.path}`] ??= { attempted: 0, failed: 0, lost: 0 });
                t.attempted += p.attempted;
                t.failed += p.failed;
                t.lost += p.lost;
            }
            log(`failover ${i}/${N} ${mode}: ${r.paths.map((p) => `${p.path} ${p.outageSeconds.toFixed(1)} s, lost ${p.lost}`).join("; ")} (${r.oldMaster} -> ${r.newMaster})`);
        }
    }
    out("| master taken down by | path | no writes for, s: min / median / max | writes attempted / failed / **lost** |");
    out("|---|---|---|---|");
    for (const mode of MODES as Mode[]) {
        for (const path of ["sentinel", "vip"]) {
            const key = `${mode} ${path}`;
            if (!outage[key]) continue;
            const t = totals[key];
            out(`| ${mode} | ${path} | ${fmt(spread(outage[key]))} | ${t.attempted} / ${t.failed} / **${t.lost}** |`);
        }
    }
    out();
}

/** 3. Throughput through the write VIP against straight to the master. */
async function throughput(target: ReturnType<typeof drillTarget>, out: (l?: string) => void) {
    const master = await discoverMaster(target.sentinels, target.masterName, target.sentinelPassword, { minVotes: majority(target.sentinels.length) });
    if (!master) throw new Error("no majority of the sentinels names a master");
    out("| redis-benchmark -c 20 (requests/s, medians of 3 interleaved rounds) | direct | via write VIP | ratio |");
    out("|---|---|---|---|");
    for (const pipeline of [1, 16]) {
        for (const b of benchVip(master, target.write, target.appPassword, 3, pipeline === 1 ? 20000 : 200000, pipeline)) {
            out(`| ${b.test} -P ${pipeline} | ${b.direct.toFixed(0)} | ${b.vip.toFixed(0)} | ${b.ratio} |`);
        }
    }
}

/** 4. With TLS against in clear, on the same master: a plaintext port is opened for the comparison, and closed again. */
async function tlsThroughput(target: ReturnType<typeof drillTarget>, out: (l?: string) => void) {
    const master = await discoverMaster(target.sentinels, target.masterName, target.sentinelPassword, { minVotes: majority(target.sentinels.length), tls: target.tls });
    if (!master) throw new Error("no majority of the sentinels names a master");
    const setPort = (port: number) => asAdmin(master.host, master.port, target.adminPassword, (c) => c.call("CONFIG", "SET", "port", String(port)), target.tls);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-bench-"));
    const tlsArgs = tlsBenchArgs(target.tls, dir);
    await setPort(6390);
    try {
        out("| redis-benchmark -c 20 (requests/s, medians of 3 interleaved rounds) | in clear | TLS | ratio |");
        out("|---|---|---|---|");
        for (const pipeline of [1, 16]) {
            const tls = { ...master, args: tlsArgs };
            for (const b of benchCompare({ host: master.host, port: 6390 }, tls, target.appPassword, 3, pipeline === 1 ? 20000 : 200000, pipeline)) {
                out(`| ${b.test} -P ${pipeline} | ${b.direct.toFixed(0)} | ${b.vip.toFixed(0)} | ${b.ratio} |`);
            }
        }
    } finally {
        await setPort(0);
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().catch((e) => {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    process.exit(1);
});
