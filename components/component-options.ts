// Options for the components whose children take the component's dependsOn.
import * as pulumi from "@pulumi/pulumi";

/**
 * A component's own options: all but dependsOn, which its children take instead. Pulumi makes
 * children wait for their component's registration; a component that also waited for its
 * dependsOn put one more engine round trip (about 40 ms) on the path of every run, per level of
 * components. Whatever depends on the component still waits for all its children.
 */
export function ownOptions(opts: pulumi.ComponentResourceOptions | undefined): pulumi.ComponentResourceOptions {
    const { dependsOn: _children, ...own } = opts ?? {};
    return own;
}
