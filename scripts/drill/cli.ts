// `npm run drill`: the failover drill on the lab stack, then the VIP benchmark. Prints tables.
//   ts-node scripts/drill/cli.ts [stack] [mode …]
import { majority } from "../../components/config";
import { discoverMaster } from "../../components/discovery";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { benchVip, tlsBenchArgs } from "./bench";
import { formatTable, Mode, MODES, runDrill } from "./drill";
import { drillTarget } from "./stack";

async function main() {
    const [stack = "lab", ...modes] = process.argv.slice(2);
    const target = drillTarget(stack);
    const chosen = (modes.length > 0 ? modes : MODES) as Mode[];
    const results = await runDrill(target, chosen, { log: (l) => console.log(`[drill] ${l}`) });
    console.log(`\nFailover drill (stack ${stack}):\n${formatTable(results)}\n`);

    const master = await discoverMaster(target.sentinels, target.masterName, target.sentinelPassword, { minVotes: majority(target.sentinels.length), tls: target.tls });
    if (!master) throw new Error("no majority of the sentinels names a master: nothing to benchmark against");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redis-ha-drill-"));
    let bench;
    try {
        bench = benchVip(master, target.write, target.appPassword, 3, 20000, 1, tlsBenchArgs(target.tls, dir));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    console.log("redis-benchmark (-c 20, requests/s, medians of 3 interleaved rounds):");
    for (const b of bench) console.log(`  ${b.test.padEnd(4)} direct ${b.direct.toFixed(0).padStart(7)}  via write VIP ${b.vip.toFixed(0).padStart(7)}  ratio ${b.ratio}`);
}

main().catch((e) => {
    console.error(`drill failed: ${(e as Error).message}`);
    process.exit(1);
});
