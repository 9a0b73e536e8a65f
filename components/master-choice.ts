// Which node becomes master when a cluster is (re-)created and no sentinel answers: the one
// holding the newest data, from each node's survey of its disk (assets/data-survey.sh). Making
// the configured initial master master regardless would full-resync the others from it, and
// newer data on another node would be lost. Pure: no Pulumi, no I/O.

/** What assets/data-survey.sh finds in a node's Redis data directory. */
export interface DataSurvey {
    hasData: boolean;
    /** Keys in dump.rdb, when it describes the data on disk. */
    keys: number | null;
    /** Replication ID and offset of the stream the data had applied (from dump.rdb). */
    replId: string | null;
    replOffset: number | null;
    /** When dump.rdb was written (Unix seconds). */
    savedAt: number | null;
    /** Total size of the AOF's incremental files. */
    aofBytes: number;
    /** Newest modification among dump.rdb and the AOF files (Unix seconds). */
    newestWrite: number | null;
}

export interface MasterChoice {
    /** The node's name. */
    master: string;
    /** One sentence for a log line. */
    why: string;
}

type Surveyed = { name: string; survey: DataSurvey };

const list = (names: string[]) => (names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`);

const describe = ({ name, survey: s }: Surveyed) =>
    `${name}: ${s.keys ?? "unknown"} keys, repl offset ${s.replOffset ?? "unknown"}, ` +
    `newest write ${s.newestWrite === null ? "unknown" : new Date(s.newestWrite * 1000).toISOString()}`;

/**
 * The node to make master when no sentinel answers. Throws, saying how to proceed, when several
 * nodes hold data and their replication offsets cannot tell which is newest.
 * @param recoverFrom the operator's choice (redis-ha:recoverFrom), which overrides the surveys
 */
export function chooseMaster(nodes: Surveyed[], initialMaster: string, recoverFrom?: string): MasterChoice {
    const names = nodes.map((n) => n.name);
    if (recoverFrom !== undefined) {
        if (!names.includes(recoverFrom)) throw new Error(`redis-ha:recoverFrom is "${recoverFrom}", which is not a node (${names.join(", ")})`);
        return { master: recoverFrom, why: `redis-ha:recoverFrom names ${recoverFrom}: its data is kept, the other nodes resync from it` };
    }

    const withData = nodes.filter((n) => n.survey.hasData);
    if (withData.length === 0) return { master: initialMaster, why: `no node holds data: ${initialMaster}, the initial master` };
    if (withData.length === 1) {
        const [only] = withData;
        return { master: only.name, why: `${only.name} is the only node holding data (${only.survey.keys ?? "unknown"} keys)` };
    }

    // Offsets continue across failovers, so the highest one has applied the most of the stream.
    const offsets = withData.map((n) => n.survey.replOffset);
    if (offsets.every((o): o is number => o !== null)) {
        const highest = Math.max(...offsets);
        const top = withData.filter((n) => n.survey.replOffset === highest);
        const others = withData.filter((n) => n.survey.replOffset !== highest).map((n) => `${n.name}: ${n.survey.replOffset}`);
        const rest = others.length > 0 ? `; ${others.join(", ")}` : "";
        if (top.length === 1) return { master: top[0].name, why: `${top[0].name} holds the newest data (repl offset ${highest}${rest})` };
        // Same ID and offset: the same position in the same stream, so the same data.
        if (top.every((n) => n.survey.replId === top[0].survey.replId)) {
            const pick = top.find((n) => n.name === initialMaster) ?? top[0];
            return {
                master: pick.name,
                why: `${list(top.map((n) => n.name))} hold the same newest data (repl offset ${highest}${rest}): ${pick.name}${pick.name === initialMaster ? ", the initial master" : ", the first of them"}`,
            };
        }
    }

    throw new Error(
        [
            "No sentinel answers and several nodes hold Redis data, but their replication offsets do not tell which is newest:",
            ...withData.map((n) => `  ${describe(n)}`),
            `Choose the node whose data to keep (one of ${withData.map((n) => n.name).join(", ")}): pulumi config set redis-ha:recoverFrom <node>, then pulumi up again.`,
            "The other nodes' data is then overwritten by a full resync from it.",
        ].join("\n"),
    );
}
