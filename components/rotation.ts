// Passwords that rotate: while `previousPasswords` holds the old one of a key, the servers accept
// both. The scripts learn the old ones as `previous-<user>` lines on stdin (see password_rules in
// assets/lib/common.sh).
import * as pulumi from "@pulumi/pulumi";
import type { PreviousPasswords } from "./cluster-args";
import type { RotatingKey } from "./config";
import { secretLines } from "./remote-command";

/**
 * A script's stdin: a "user password" line per user, then "previous-<user> password" for each
 * user whose config key (in `keys`) is being retired. Secret.
 */
export function rotatingSecretLines(
    current: Record<string, pulumi.Input<string>>,
    previous: pulumi.Input<PreviousPasswords>,
    keys: Record<string, RotatingKey>,
): pulumi.Output<string> {
    const old = pulumi.output(previous).apply((p) => {
        const entries = Object.entries(keys).flatMap(([user, key]) => (p[key] === undefined ? [] : [[`previous-${user}`, p[key]!] as const]));
        return Object.fromEntries(entries);
    });
    return pulumi.secret(pulumi.all([secretLines(current), old.apply((o) => secretLines(o))]).apply(([now, then]) => now + then));
}
