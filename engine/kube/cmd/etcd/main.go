// Command etcd runs etcd's server entry point (go.etcd.io/etcd/server/v3/etcdmain).
// etcd's own root module has replace lines, so it cannot be a dependency; this is the
// same one-line main it has.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
