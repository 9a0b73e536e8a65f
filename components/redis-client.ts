// An ioredis client that fails fast: no retries, no offline queue, connection errors reported
// through the command that fails rather than as events. Self-contained (ioredis is required
// inside), so dynamic providers can capture it: their code is serialized into another process.
import type { default as Redis, RedisOptions } from "ioredis";

export function failFastClient(opts: RedisOptions): Redis {
    const Client = require("ioredis") as typeof import("ioredis").default;
    const client = new Client({ lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, ...opts });
    client.on("error", () => undefined);
    return client;
}
