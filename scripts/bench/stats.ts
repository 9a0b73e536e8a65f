// min / median / max of a series, as the bench prints them.
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface Spread {
    min: number;
    median: number;
    max: number;
    n: number;
}

export function spread(xs: number[]): Spread {
    return { min: Math.min(...xs), median: median(xs), max: Math.max(...xs), n: xs.length };
}

/** "1.2 / 1.5 / 2.0" with the given decimals. */
export const fmt = (s: Spread, decimals = 1) => [s.min, s.median, s.max].map((x) => x.toFixed(decimals)).join(" / ");
