// Server-side scripts live in assets/ as real files; this reads them for RemoteCommand.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

const ASSETS_DIR = path.join(__dirname, "..", "assets");

/** First line of every script sent: it names the asset, so that a preview can say which changed. */
const HEADER = "# redis-ha: assets/";
/** Ends a file embedded in a script (a quoted heredoc: its text is taken as it is). */
const END_OF_FILE = "REDIS_HA_END_OF_FILE";

/** The text of assets/<name>; throws naming the file when it is missing. */
export function readAsset(name: string): string {
    const file = path.join(ASSETS_DIR, name);
    if (!fs.existsSync(file)) throw new Error(`asset ${name} is missing (looked for ${file})`);
    return fs.readFileSync(file, "utf8");
}

/**
 * assets/<name> as one self-contained script to send: a line naming it, assets/lib/common.sh,
 * then each of `variables` (short values, e.g. which step runs), then each of `files` (not
 * secret: e.g. a config file the script installs) as a shell variable of that name, then the
 * script itself. Files travel inside the script rather than in its
 * environment, so that a preview shows a change of one as the script's digest changing.
 */
export function script(name: string, files: Record<string, string> = {}, variables: Record<string, string> = {}): string {
    const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    const set = Object.entries(variables).map(([variable, value]) => `${variable}=${quote(value)}\n`);
    const embedded = Object.entries(files).map(([variable, text]) => {
        const body = text.endsWith("\n") ? text : `${text}\n`;
        if (body.split("\n").includes(END_OF_FILE)) throw new Error(`${variable} holds the line ${END_OF_FILE}, which ends embedded files`);
        return `IFS= read -r -d '' ${variable} <<'${END_OF_FILE}' || true\n${body}${END_OF_FILE}\n`;
    });
    return `${HEADER}${name}\n${readAsset("lib/common.sh")}\n${set.join("")}${embedded.join("")}${readAsset(name)}`;
}

/** How a preview shows a script: the asset it comes from and the digest of its whole text. */
export function scriptLabel(text: string): string {
    const first = text.slice(0, text.indexOf("\n"));
    const name = first.startsWith(HEADER) ? first.slice(HEADER.length) : "script";
    return `${name} sha256:${createHash("sha256").update(text).digest("hex").slice(0, 12)}`;
}
