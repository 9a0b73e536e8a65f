// Progress lines from inside a dynamic provider. The provider process (the SDK's
// cmd/dynamic-provider) gets the engine's address as its first argument, but the SDK does not
// connect its log there, so this talks to the engine's Log RPC itself; anywhere else (tests, the
// drill), lines go to stderr. Self-contained: it is serialized into the providers that capture it.
export function engineLog(prefix: string, severity: "info" | "warning" = "info"): (message: string) => void {
    let engine: any;
    return (message: string) => {
        try {
            if (engine === undefined) {
                const inProvider = /[\\/]dynamic-provider[\\/]/.test(process.argv[1] ?? "") && Boolean(process.argv[2]);
                const grpc = require("@grpc/grpc-js");
                const rpc = require("@pulumi/pulumi/proto/engine_grpc_pb.js");
                engine = inProvider ? new rpc.EngineClient(process.argv[2], grpc.credentials.createInsecure()) : null;
            }
            if (!engine) throw new Error("no engine");
            const pb = require("@pulumi/pulumi/proto/engine_pb.js");
            const req = new pb.LogRequest();
            req.setSeverity(severity === "warning" ? pb.LogSeverity.WARNING : pb.LogSeverity.INFO);
            req.setMessage(`${prefix}: ${message}`);
            engine.log(req, () => undefined);
        } catch {
            process.stderr.write(`${severity === "warning" ? "warning: " : ""}${prefix}: ${message}\n`);
        }
    };
}
