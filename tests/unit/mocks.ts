// Pulumi mocks shared by the unit tests (one set per process): every resource the program
// registers is recorded, and commands answer with the JSON their scripts would print.
import * as pulumi from "@pulumi/pulumi";

// The program asks the sentinels who is master. Under mocks nothing is asked (the addresses are
// examples, and no traffic may leave for them): no answer, as from a brand-new cluster.
require("../../components/discovery").discoverMaster = async () => undefined;
// Nor is any node's SSH port probed: every node answers.
require("../../components/reachability").unreachableNodes = async () => [];

export interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, any>;
    provider?: string;
}
export const recorded: Recorded[] = [];

const MOCK_STDOUT: [RegExp, object][] = [
    [/-facts$/, { hostname: "h", kernel: "6.1", os: "Debian GNU/Linux 12", cpus: 2, memoryMiB: 2048 }],
    [/-packages$/, { installedNow: 3, versions: { "redis-server": "7.0.15" } }],
    [/-kernel$/, { overcommitMemory: "1", somaxconn: "1024", swappiness: "60", transparentHugePages: "never", thpDefrag: "never", warnings: [] }],
    [/-redis$/, { initialized: true, restarted: true, settingsApplied: 0, role: "master", version: "7.0.15" }],
    [/-sentinel$/, { initialized: true, restarted: true, master: "10.0.10.7:6379" }],
];

pulumi.runtime.setMocks(
    {
        newResource(args) {
            recorded.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
            const state: Record<string, unknown> = { ...args.inputs, runId: `${args.name}-run` };
            const stdout = MOCK_STDOUT.find(([re]) => re.test(args.name));
            if (stdout) state.stdout = JSON.stringify(stdout[1]);
            if (args.name.endsWith("-host-key")) state.fingerprint = `SHA256:${"k".repeat(43)}`;
            if (args.name.endsWith("sentinel-agreement")) {
                state.master = { name: "redis-1", host: "10.0.10.7", port: 6379 };
                state.replicas = ["redis-2", "redis-3"];
            }
            // The rollout read redis-1 only (as if the others were down): they keep the packages step's versions.
            if (args.name.endsWith("rolling-restart")) state.runs = { "redis-1": { version: "7.0.15", packages: { "redis-server": "5:7.0.15-1~deb12u10" } } };
            // The private CA: stand-in PEM text, one certificate per node and client named after it.
            if (args.name.endsWith("-tls")) {
                const issued = (name: string) => ({ cert: `cert-of-${name}`, key: `key-of-${name}`, notAfter: "2027-12-05T00:00:00.000Z" });
                state.caCert = "ca-cert";
                state.caKey = "ca-key";
                state.nodeCerts = Object.fromEntries((args.inputs.nodes as { name: string }[]).map((n) => [n.name, issued(n.name)]));
                state.clientCerts = Object.fromEntries((args.inputs.clients as string[]).map((c) => [c, issued(c)]));
            }
            if (args.type === "docker:index/remoteImage:RemoteImage") state.imageId = `sha256:mock-${args.inputs.name}`;
            return { id: `${args.name}-id`, state };
        },
        call: () => {
            throw new Error("the program makes no provider calls");
        },
    },
    "redis-ha",
    "unit",
    false,
);

// Mocks hand over secret inputs wrapped with Pulumi's secret signature.
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const isSecret = (v: any) => v !== null && typeof v === "object" && SECRET_SIG in v;
export const plain = (v: any): any => (isSecret(v) ? plain(v.value) : v);
export const outputOf = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
