// The stack configuration: one zod schema, parsed once in index.ts, before any resource exists.
// Every error names the config key (as `pulumi config set` spells it) and what to do about it.
import { z } from "zod";

export const CONFIG_NAMESPACE = "redis-ha";

const isIpv4 = (s: string) => z.ipv4().safeParse(s).success;
const ipv4 = z.ipv4({ error: "must be an IPv4 address such as 10.211.11.7" });
const port = z
    .number({ error: "must be a port number" })
    .int({ error: "must be a whole number" })
    .min(1, { error: "must be between 1 and 65535" })
    .max(65535, { error: "must be between 1 and 65535" });

const nodeName = z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, {
        error: "must be 1-32 lower-case letters, digits or '-', e.g. redis-1 (it names resources and hosts)",
    });

export const nodeSchema = z.strictObject({
    /** Resource-friendly name of the server, unique in the stack. */
    name: nodeName,
    /** Address Pulumi reaches the server's sshd on. */
    host: z.string({ error: "is required: the server's SSH address" }).superRefine((h, ctx) => {
        if (/^[\d.]+$/.test(h) ? !isIpv4(h) : !z.hostname().safeParse(h).success) {
            ctx.addIssue({ code: "custom", message: "must be an IPv4 address such as 10.211.11.7, or a DNS name" });
        }
    }),
    /** SSH user; root, or a user with password-less sudo. Default: root. */
    sshUser: z.string().min(1).default("root"),
    /** SSH port. Default: 22. */
    sshPort: port.default(22),
    /** Private address Redis binds and announces. Default: `host` when it is an IPv4 address. */
    privateIp: ipv4.optional(),
});

export const redisSchema = z
    .strictObject({
        /** Port Redis listens on. Default: 6379. */
        port: port.default(6379),
    })
    .prefault({});

const password = z
    .string({ error: "is required: pulumi config set --secret <key> \"$(openssl rand -base64 32)\"" })
    .min(16, { error: "is too short: use at least 16 characters, e.g. openssl rand -base64 32" });

export const stackConfigSchema = z
    .strictObject({
        /** The servers, 1 or more; names and addresses must be unique. */
        nodes: z.array(nodeSchema).min(1, { error: "must list at least one server" }),
        /** Private key (OpenSSH or PEM) for every node's SSH user. Secret. */
        sshPrivateKey: z
            .string({ error: "is required: pulumi config set --secret redis-ha:sshPrivateKey < ~/.ssh/id_ed25519" })
            .refine((k) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k), {
                error: "is not a private key: pass the file's contents, e.g. pulumi config set --secret redis-ha:sshPrivateKey < ~/.ssh/id_ed25519",
            }),
        /** Seconds to keep retrying SSH while a server boots. Default: 60. */
        sshTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
        redis: redisSchema,
        /** Password of Redis's admin (for now: `requirepass`). Secret. */
        adminPassword: password,
    })
    .superRefine((cfg, ctx) => {
        const seen = new Map<string, number>();
        cfg.nodes.forEach((n, i) => {
            for (const [what, value] of [
                ["name", n.name],
                ["host", `${n.host}:${n.sshPort}`],
                ["privateIp", n.privateIp ?? n.host],
            ] as const) {
                const key = `${what}=${value}`;
                const first = seen.get(key);
                if (first !== undefined) {
                    ctx.addIssue({
                        code: "custom",
                        path: ["nodes", i, what],
                        message: `duplicates nodes[${first}].${what} (${value}); every node needs its own`,
                    });
                } else {
                    seen.set(key, i);
                }
            }
            if (n.privateIp === undefined && !isIpv4(n.host)) {
                ctx.addIssue({
                    code: "custom",
                    path: ["nodes", i, "privateIp"],
                    message: `is required when host is a DNS name (${n.host}): set the address Redis should bind`,
                });
            }
        });
    });

export type StackConfig = z.infer<typeof stackConfigSchema>;
export type NodeConfig = z.infer<typeof nodeSchema> & { privateIp: string };

/** Validated config, with each node's privateIp filled in. */
export interface ResolvedConfig extends Omit<StackConfig, "nodes"> {
    nodes: NodeConfig[];
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

/** `nodes[1].host` → `redis-ha:nodes[1].host`, the spelling `pulumi config set --path` takes. */
function keyOf(path: ReadonlyArray<PropertyKey>): string {
    let key = CONFIG_NAMESPACE + ":";
    path.forEach((p, i) => {
        key += typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`;
    });
    return key;
}

/** Problems with raw config values, as `<key> <what is wrong and the fix>`, or the parsed config. */
function validate(raw: Record<string, unknown>): { problems: string[]; config?: ResolvedConfig } {
    const result = stackConfigSchema.safeParse(raw);
    if (!result.success) return { problems: result.error.issues.map((i) => `${keyOf(i.path)} ${i.message}`) };
    const cfg = result.data;
    return { problems: [], config: { ...cfg, nodes: cfg.nodes.map((n) => ({ ...n, privateIp: n.privateIp ?? n.host })) } };
}

/** Parses raw config values (as read from the stack) or throws a ConfigError listing every problem. */
export function parseStackConfig(raw: Record<string, unknown>): ResolvedConfig {
    const { problems, config } = validate(raw);
    if (!config) throw new ConfigError(problems);
    return config;
}

const KINDS: Record<keyof StackConfig, "json" | "string"> = {
    nodes: "json",
    sshPrivateKey: "string",
    sshTimeoutSeconds: "json",
    redis: "json",
    adminPassword: "string",
};

/**
 * Parses the stack's config as the engine hands it over (`pulumi.runtime.allConfig()`: every
 * value a string, keys as `redis-ha:<key>`). Reading the raw map keeps secrets readable for
 * validation without a warning per key; the caller wraps them with pulumi.secret again.
 */
export function parseAllConfig(all: Record<string, string>): ResolvedConfig {
    const raw: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [fullKey, value] of Object.entries(all)) {
        if (!fullKey.startsWith(CONFIG_NAMESPACE + ":")) continue;
        const key = fullKey.slice(CONFIG_NAMESPACE.length + 1);
        const kind = (KINDS as Record<string, string | undefined>)[key];
        if (kind === undefined) {
            problems.push(`${fullKey} is not a known key (known: ${Object.keys(KINDS).join(", ")}); remove it with pulumi config rm ${fullKey}`);
        } else if (kind === "json") {
            try {
                raw[key] = JSON.parse(value);
            } catch {
                problems.push(`${fullKey} is not valid YAML/JSON structure; set it with pulumi config set --path or edit the stack file`);
            }
        } else {
            raw[key] = value;
        }
    }
    const { problems: invalid, config } = validate(raw);
    problems.push(...invalid);
    if (problems.length > 0 || !config) throw new ConfigError(problems);
    return config;
}
