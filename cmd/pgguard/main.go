// Command pgguard is a PostgreSQL proxy that refuses and rewrites unsafe
// schema migrations. See README.md.
package main

import (
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}
