// Waiting for the servers, for the dynamic resources whose creation is a wait (SentinelAgreement,
// VipCheck): one look after another until one is done or the time is up, progress lines through
// the engine, and the provider around it, which keeps the passwords out of the outputs.
// Everything here is self-contained (it captures no module state, and what it calls requires
// its packages itself): dynamic providers are serialized with their closures and run in
// another process.
import type * as pulumi from "@pulumi/pulumi";
import { engineLog } from "./provider-log";

/** One look: done (what it found, and a line saying so) or not yet (why not). */
export type Look<T> = { done: true; found: T; says: string } | { done: false; why: string };

export interface Wait<T> {
    /** Names the progress lines, e.g. "vip check". */
    what: string;
    /** The error once the time is up, before " within <n> s: <why>", e.g. "the VIPs are not served". */
    failure: string;
    timeoutSeconds: number;
    look: () => Promise<Look<T>>;
}

/**
 * Looks every half second until a look is done, and returns what it found with the seconds it
 * took. Logs why it still waits whenever that changes (and every 10 s), and fails once
 * `timeoutSeconds` have passed, with the last reason. Self-contained: serialized into providers.
 */
export async function waitUntil<T extends object>(wait: Wait<T>): Promise<T & { waitedSeconds: number }> {
    const progress = engineLog(wait.what);
    const started = Date.now();
    const deadline = started + wait.timeoutSeconds * 1000;
    let last = "";
    let lastLogged = 0;
    for (;;) {
        const result = await wait.look();
        if (result.done) {
            const waitedSeconds = Math.round((Date.now() - started) / 100) / 10;
            progress(`${result.says} (after ${waitedSeconds} s)`);
            return { ...result.found, waitedSeconds };
        }
        if (Date.now() > deadline) throw new Error(`${wait.failure} within ${wait.timeoutSeconds} s: ${result.why}`);
        if (result.why !== last || Date.now() - lastLogged > 10_000) {
            progress(`waiting: ${result.why}`);
            last = result.why;
            lastLogged = Date.now();
        }
        await new Promise((r) => setTimeout(r, 500));
    }
}

export interface Waiting<I, S extends keyof I, F> {
    /** The resource's id, from its inputs. */
    id: (inputs: I) => string;
    /** The inputs whose change means waiting again (compared as JSON); never a secret. */
    compared: readonly Exclude<keyof I, S>[];
    /** The inputs left out of the outputs: passwords. */
    secrets: readonly S[];
    /** The wait itself, at creation and at every update; what it returns joins the outputs. */
    wait: (inputs: I) => Promise<F>;
}

/**
 * The provider of a resource that waits: `wait` runs at create and update, the outputs are the
 * inputs but the secrets, with what the wait found. Self-contained: serialized with the resource.
 */
export function waitingProvider<I extends object, S extends keyof I, F extends object>(
    spec: Waiting<I, S, F>,
): pulumi.dynamic.ResourceProvider<I, Omit<I, S> & F> {
    const kept = (inputs: I) => Object.fromEntries(Object.entries(inputs).filter(([k]) => !(spec.secrets as readonly PropertyKey[]).includes(k))) as Omit<I, S>;
    return {
        async diff(_id: string, olds: Omit<I, S> & F, news: I) {
            return { changes: spec.compared.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
        },
        async create(inputs: I) {
            const found = await spec.wait(inputs);
            return { id: spec.id(inputs), outs: { ...kept(inputs), ...found } };
        },
        async update(_id: string, _olds: Omit<I, S> & F, news: I) {
            const found = await spec.wait(news);
            return { outs: { ...kept(news), ...found } };
        },
    };
}
