// The first thing the program loads (from toolchain/program.js; index.ts imports it first too):
// five changes to how Node loads and runs the rest (numbered below), which together take about
// 1.2 s off every `pulumi up` and preview here (README "Speed"). Nothing in the program depends
// on them; without this file it runs the same, slower.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");
const { cacheParseFunction } = require("./closure-parse-cache");
const { deferModules } = require("./deferred-modules");

const root = path.resolve(__dirname, "..");
// Where the caches below live; tests point it elsewhere to start cold.
const cacheRoot = process.env.REDIS_HA_PROGRAM_CACHE || path.join(root, "node_modules", ".cache");

// 0. V8's compiled code of every module loaded from here on (@pulumi/pulumi, gRPC, zod, the
// program) kept on disk by Node (22.1+), instead of compiled again at each run.
Module.enableCompileCache?.(path.join(cacheRoot, "redis-ha-v8"));

// 1. TypeScript through a cache on disk. `pulumi` registers ts-node, which transpiles every file
// again on each run; from here on each file's JavaScript is kept, keyed by the file, its text,
// tsconfig.json and the compiler's version, so a run pays only for changed files. Types are not
// checked here, as with ts-node before (tsconfig `noCheck`); `npm run build` and `npm test` do.
const cacheDir = path.join(cacheRoot, "redis-ha-ts");
// Bump when what this file emits changes.
const FORMAT = "1";
const configPath = path.join(root, "tsconfig.json");
const configText = fs.readFileSync(configPath, "utf8");
const compilerVersion = JSON.parse(
    fs.readFileSync(require.resolve("typescript/package.json", { paths: [root] }), "utf8"),
).version;
// The JavaScript of each file loaded in this process, for stack traces.
const emitted = new Map();

let ts;
let compilerOptions;
function compile(source, filename) {
    if (!ts) {
        ts = require(require.resolve("typescript", { paths: [root] }));
        const read = ts.readConfigFile(configPath, ts.sys.readFile);
        if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
        compilerOptions = {
            ...ts.parseJsonConfigFileContent(read.config, ts.sys, root).options,
            sourceMap: false,
            inlineSourceMap: true,
            inlineSources: false,
            declaration: false,
            noEmit: false,
        };
    }
    const out = ts.transpileModule(source, { fileName: filename, compilerOptions, reportDiagnostics: true });
    const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length > 0) {
        throw new SyntaxError(ts.formatDiagnostics(errors, {
            getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => "\n",
        }));
    }
    return out.outputText;
}

function transpiled(source, filename) {
    const key = crypto.createHash("sha256")
        .update([FORMAT, compilerVersion, configText, filename, source].join("\0"))
        .digest("hex");
    const cached = path.join(cacheDir, `${key}.js`);
    try {
        return fs.readFileSync(cached, "utf8");
    } catch {
        // Not cached yet.
    }
    const js = compile(source, filename);
    try {
        fs.mkdirSync(cacheDir, { recursive: true });
        // Write then rename: a concurrent or interrupted run never reads half a file.
        const tmp = `${cached}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, js);
        fs.renameSync(tmp, cached);
    } catch {
        // A read-only checkout still runs; it transpiles each time.
    }
    return js;
}

Module._extensions[".ts"] = function (module, filename) {
    const js = transpiled(fs.readFileSync(filename, "utf8"), filename);
    emitted.set(filename, js);
    module._compile(js, filename);
};

// Stack traces name TypeScript lines: the source-map-support copies in use (ts-node's, and
// @pulumi/pulumi's without it) read a frame's file to find its map; hand them the JavaScript,
// which carries its map inline, instead of the TypeScript on disk.
for (const [name, from] of [["@cspotcode/source-map-support", "ts-node"], ["source-map-support", "@pulumi/pulumi"]]) {
    try {
        const dir = path.dirname(require.resolve(`${from}/package.json`, { paths: [root] }));
        require(require.resolve(name, { paths: [dir] })).install({
            retrieveFile: (file) => emitted.get(file) ?? null,
            environment: "node",
        });
    } catch {
        // Not installed: nothing maps stack traces, nothing to tell.
    }
}

// 2. @pulumi/pulumi records a stack trace for every promise it makes (about 250 per run here),
// shown only in its report of promises left pending. Mapping those through source maps took
// 0.3 s of CPU per run; they get V8's plain text instead. Every other stack stays mapped.
const mapped = Error.prepareStackTrace;
Error.prepareStackTrace = function (error, frames) {
    if (frames[0]?.getFunctionName() === "debuggablePromise" || !mapped) {
        return `${error}${frames.map((f) => `\n    at ${f}`).join("")}`;
    }
    return mapped(error, frames);
};

// 3. @pulumi/pulumi loads npm's Arborist (and with it pacote, sigstore and an HTTP stack, 0.5 s
// of CPU) at start, for serializing functions into packages, which this program never does. It
// gets a stand-in that loads the real module the first time anything on it is used.
deferModules((request) => request === "@npmcli/arborist");

// 4. Pulumi's closure serializer parses each function of the dynamic providers with TypeScript
// (0.2 s of CPU per run); those parses are kept on disk (closure-parse-cache.js).
cacheParseFunction(path.join(cacheRoot, "redis-ha-closure.json"));
