//go:build tools

// Package tools pins the Pulumi CLI so `go build` resolves it from the module proxy
// with the versions recorded in go.sum (no GitHub access needed).
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
