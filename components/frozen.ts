// A node marked down (nodes[].down) keeps every resource as it last was: each resource's inputs
// are left out of the comparison (ignoreChanges on all of them), so no step runs on that server
// and nothing waits for it. When the node is back (down unset), the differences show and run.
import * as pulumi from "@pulumi/pulumi";

const freeze: pulumi.ResourceTransformation = ({ props, opts }) => ({ props, opts: pulumi.mergeOptions(opts, { ignoreChanges: Object.keys(props) }) });

/** Options that freeze a resource or component (with its children) when `down`. */
export const frozenIf = (down: boolean): pulumi.ResourceOptions => (down ? { transformations: [freeze] } : {});
