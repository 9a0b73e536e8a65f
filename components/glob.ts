// Redis glob patterns (channel and key patterns of ACL rules), read as Redis reads them.

/** One position of a Redis glob: `*`, or a test for one byte (a literal, `?` or a `[...]` class). */
type GlobStep = { star: true } | { star: false; matches: (byte: number) => boolean };

/** A Redis glob pattern as steps, read exactly as Redis's stringmatchlen() reads it. */
function globSteps(pattern: Buffer): GlobStep[] {
    const [STAR, QUESTION, OPEN, CLOSE, CARET, DASH, BACKSLASH] = [..."*?[]^-\\"].map((c) => c.charCodeAt(0));
    const steps: GlobStep[] = [];
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === STAR) {
            steps.push({ star: true });
        } else if (c === QUESTION) {
            steps.push({ star: false, matches: () => true });
        } else if (c === OPEN) {
            const negate = pattern[++i] === CARET;
            if (negate) i++;
            const ranges: [number, number][] = [];
            for (; ; i++) {
                if (pattern[i] === BACKSLASH && i + 1 < pattern.length) {
                    i++;
                    ranges.push([pattern[i], pattern[i]]);
                } else if (pattern[i] === CLOSE) {
                    break;
                } else if (i >= pattern.length) {
                    i--; // an unterminated class ends with the pattern
                    break;
                } else if (i + 2 < pattern.length && pattern[i + 1] === DASH) {
                    ranges.push([Math.min(pattern[i], pattern[i + 2]), Math.max(pattern[i], pattern[i + 2])]);
                    i += 2;
                } else {
                    ranges.push([pattern[i], pattern[i]]);
                }
            }
            steps.push({ star: false, matches: (b) => ranges.some(([lo, hi]) => b >= lo && b <= hi) !== negate });
        } else {
            if (c === BACKSLASH && i + 1 < pattern.length) i++;
            const literal = pattern[i];
            steps.push({ star: false, matches: (b) => b === literal });
        }
    }
    return steps;
}

/**
 * Whether the Redis glob `pattern` (`*`, `?`, `[...]`, `[^...]`, ranges, `\` escapes) matches at
 * least one string that starts with `prefix`: the pattern runs over the prefix as a set of live
 * positions; any position still live after it, with something matchable left, means yes.
 */
export function globCanMatchPrefix(pattern: string, prefix: string): boolean {
    const steps = globSteps(Buffer.from(pattern, "utf8"));
    const withStars = (positions: number[]) => {
        const live = new Set<number>();
        for (let i of positions) {
            live.add(i);
            while (steps[i]?.star) live.add(++i);
        }
        return live;
    };
    let live = withStars([0]);
    for (const byte of Buffer.from(prefix, "utf8")) {
        const next: number[] = [];
        for (const i of live) {
            const step = steps[i];
            if (step?.star) next.push(i);
            else if (step?.matches(byte)) next.push(i + 1);
        }
        live = withStars(next);
    }
    // An empty class (`[]`) matches no byte: a rest of the pattern holding one matches nothing.
    const bytes = Array.from({ length: 256 }, (_, b) => b);
    return [...live].some((i) => steps.slice(i).every((s) => s.star || bytes.some(s.matches)));
}
