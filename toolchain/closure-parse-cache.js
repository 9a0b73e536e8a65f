// Pulumi's closure serializer, which turns each dynamic provider into code kept in the state,
// parses every function it meets with TypeScript to find the names it uses from outside: about
// 100 functions, 0.2 s of CPU per run here. That parse (`parseFunction`) depends only on the
// function's text, the names on Node's global object (it leaves those out as built in) and the
// versions of @pulumi/pulumi and TypeScript, so its results are kept on disk keyed by all of
// them. A result JSON cannot carry exactly is not kept.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");
const { isDeepStrictEqual } = require("node:util");

// Bump when what is kept changes.
const FORMAT = "1";
// Entries of earlier runs kept beside this run's, for stacks whose settings need other providers.
const MAX_ENTRIES = 2000;

// JSON that carries what parseFunction returns: Maps (the captured names) and properties set to
// undefined, which JSON.stringify would drop.
function replacer(_, v) {
    if (v instanceof Map) return { $map: [...v] };
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const undef = Object.keys(v).filter((k) => v[k] === undefined);
    return undef.length > 0 ? { ...v, $undefined: undef } : v;
}
function reviver(_, v) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    if (Array.isArray(v.$map) && Object.keys(v).length === 1) return new Map(v.$map);
    if (Array.isArray(v.$undefined)) {
        for (const k of v.$undefined) v[k] = undefined;
        delete v.$undefined;
    }
    return v;
}
const toJson = (value) => JSON.stringify(value, replacer);
const fromJson = (text) => JSON.parse(text, reviver);

function read(file) {
    try {
        return new Map(Object.entries(JSON.parse(fs.readFileSync(file, "utf8"))));
    } catch {
        return new Map(); // none yet, or unreadable: parse again
    }
}

function write(file, entries) {
    try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        // Write then rename: a concurrent or interrupted run never reads half a file.
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(entries)));
        fs.renameSync(tmp, file);
    } catch {
        // A read-only checkout still runs; it parses each time.
    }
}

/** From now on, @pulumi/pulumi's parseFunction goes through the cache kept in `file`. */
exports.cacheParseFunction = function cacheParseFunction(file) {
    const load = Module._load;
    const wrapped = new WeakSet();
    Module._load = function (request, parent) {
        const exported = load.apply(this, arguments);
        if (request !== "./parseFunction" || wrapped.has(exported)) return exported;
        if (!parent?.filename?.endsWith(path.join("runtime", "closure", "createClosure.js"))) return exported;
        wrapped.add(exported);
        const sdk = path.resolve(path.dirname(parent.filename), "..", "..");
        const version = (p) => JSON.parse(fs.readFileSync(p, "utf8")).version;
        const versions = [
            version(path.join(sdk, "package.json")),
            version(require.resolve("typescript/package.json", { paths: [sdk] })),
        ].join(",");
        const parse = exported.parseFunction;
        let kept; // read on first use
        const used = new Map();
        let added = false;
        exported.parseFunction = function parseFunction(funcString) {
            const globals = Object.getOwnPropertyNames(globalThis).sort().join(",");
            const key = crypto.createHash("sha256")
                .update([FORMAT, versions, globals, funcString].join("\0"))
                .digest("hex");
            kept ??= read(file);
            const hit = used.get(key) ?? kept.get(key);
            if (hit !== undefined) {
                used.set(key, hit);
                return fromJson(hit);
            }
            const result = parse.apply(this, arguments);
            const text = toJson(result);
            if (isDeepStrictEqual(fromJson(text), result)) {
                used.set(key, text);
                added = true;
            }
            return result;
        };
        process.on("exit", () => {
            if (!added) return;
            const entries = new Map(used);
            for (const [key, text] of kept) {
                if (entries.size >= MAX_ENTRIES) break;
                if (!entries.has(key)) entries.set(key, text);
            }
            write(file, entries);
        });
        return exported;
    };
};
