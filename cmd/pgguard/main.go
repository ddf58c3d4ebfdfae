// Command pgguard is a PostgreSQL proxy that refuses and rewrites unsafe
// schema migrations. See README.md.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}
