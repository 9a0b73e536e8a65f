//go:build tools

// Package tools pins the Node.js language host. Newer releases moved it into its own
// module, which the module proxy here does not serve; v3.68.0 is the last sdk/v3 release
// that still carries it (see toolchain/README.md).
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
