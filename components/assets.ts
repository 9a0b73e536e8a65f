// Server-side scripts live in assets/ as real files; this reads them for RemoteCommand.
import * as fs from "fs";
import * as path from "path";

const ASSETS_DIR = path.join(__dirname, "..", "assets");

/** The text of assets/<name>; throws naming the file when it is missing. */
export function readAsset(name: string): string {
    const file = path.join(ASSETS_DIR, name);
    if (!fs.existsSync(file)) throw new Error(`asset ${name} is missing (looked for ${file})`);
    return fs.readFileSync(file, "utf8");
}

/** assets/<name> with assets/lib/common.sh in front: one self-contained script to send. */
export function script(name: string): string {
    return readAsset("lib/common.sh") + "\n" + readAsset(name);
}
