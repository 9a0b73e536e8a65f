// Modules a process may never use, loaded the first time anything on them is used instead of
// when they are required. Shared by program-start.js (the program) and provider-start.js (the
// dynamic-provider process).
"use strict";
const Module = require("node:module");

/** From now on, a `require(request)` for which `matches(request)` holds gets a stand-in. */
exports.deferModules = function deferModules(matches) {
    const load = Module._load;
    Module._load = function (request, parent, isMain) {
        if (!matches(request)) return load.apply(this, arguments);
        let real;
        const get = () => (real ??= load.call(this, request, parent, isMain));
        return new Proxy({}, {
            // Asked by TypeScript's import helpers, which would otherwise copy every export at once.
            get: (_, key) => (key === "__esModule" ? true : Reflect.get(get(), key)),
            has: (_, key) => Reflect.has(get(), key),
            ownKeys: () => Reflect.ownKeys(get()),
            getOwnPropertyDescriptor: (_, key) => {
                const d = Reflect.getOwnPropertyDescriptor(get(), key);
                return d && { ...d, configurable: true };
            },
        });
    };
};
