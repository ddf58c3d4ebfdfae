package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// stdio is where a command reads and writes; tests pass buffers.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// command is one subcommand. run returns the process exit code.
type command struct {
	summary string
	run     func(args []string, io stdio) int
}

var commands = map[string]command{}

// register adds a subcommand; each lives in its own file and registers
// itself from init. Registering a name twice is a programming error.
func register(name, summary string, run func(args []string, io stdio) int) {
	if _, dup := commands[name]; dup {
		panic("pgguard: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// run dispatches to a subcommand; serve is the default, so `pgguard --listen
// ...` works as well as `pgguard serve --listen ...`.
func run(args []string, io stdio) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(io.out)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(io.err, "pgguard: unknown command %q\n\n", name)
		usage(io.err)
		return 2
	}
	return c.run(args, io)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pgguard [command] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'pgguard <command> -h' for a command's flags.")
}
