// Command pulumi-resource-kubernetes serves the Pulumi Kubernetes provider.
//
// Upstream's main (provider/cmd/pulumi-resource-kubernetes) embeds schema-embed.json and
// terraform-mapping-embed.json, which its Makefile generates and which are not in the Go
// module. engine/build.sh generates the same two files from the module's committed
// schema.json and terraform-mapping.json (with the provider version set) into this
// folder's copy in the build directory before `go build`; they are never committed.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
