// Run in a child process by toolchain.test.ts (not a test file itself): prints as JSON the
// provider code serialized into each dynamic resource of a cluster with the VIP proxy and TLS,
// under Pulumi mocks. Whatever loaded first (toolchain/program-start.js or ts-node) stays in force.
import { RedisHaCluster } from "../../components/cluster";
import { proxiedConfig } from "./fixtures";
import { outputOf, recorded } from "./mocks";

const cluster = new RedisHaCluster(
    "code",
    proxiedConfig({ nodes: ["a", "b"], writeVip: "10.1.0.100", readVip: "10.1.0.101" }, { tls: { enabled: true } }) as never,
);
outputOf(cluster.currentMaster).then(() => {
    const code = Object.fromEntries(recorded.filter((r) => r.type === "pulumi-nodejs:dynamic:Resource").map((r) => [r.name, r.inputs.__provider]));
    process.stdout.write(JSON.stringify(code));
});
