package main

import (
	"errors"
	"flag"
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
// ...` works as well as `pgguard serve --listen ...`, and `pgguard --help`
// is serve's help, which lists every command.
func run(args []string, io stdio) int {
	name := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "--version" || a == "-version":
			name, args = "version", args[1:]
		case !strings.HasPrefix(a, "-"):
			name, args = a, args[1:]
		}
	}
	if name == "help" {
		// `pgguard help lint` is `pgguard lint --help`; `pgguard help` is
		// serve's, which lists every command.
		name = "serve"
		if _, ok := commands[first(args)]; ok {
			name = args[0]
		}
		return commands[name].run([]string{"--help"}, io)
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(io.err, "pgguard: unknown command %q\n\n", name)
		usage(io.err, nil)
		return 2
	}
	return c.run(args, io)
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// usage lists the commands and, when serveFlags is not nil, the flags of
// serve, the default command.
func usage(w io.Writer, serveFlags *flag.FlagSet) {
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
	fmt.Fprintln(w, "\nRun 'pgguard <command> --help' (or 'pgguard help <command>') for a command's flags;\n'pgguard --version' prints the version.")
	if serveFlags == nil {
		return
	}
	fmt.Fprintln(w, "\nflags of serve (pgguard [serve] [flags]); flags take precedence over PGGUARD_*")
	fmt.Fprintln(w, "environment variables, which take precedence over the proxy: section of the rules file:")
	out := serveFlags.Output()
	serveFlags.SetOutput(w)
	serveFlags.PrintDefaults()
	serveFlags.SetOutput(out)
}

// parseFlags parses a command's arguments. -h or --help prints the usage on
// standard output and returns flag.ErrHelp (the command then exits 0); a bad
// flag prints the problem and the usage on standard error (exit 2). fs.Usage
// must write to fs.Output().
func parseFlags(fs *flag.FlagSet, args []string, io stdio) error {
	printUsage := fs.Usage
	fs.Usage = func() {} // printed below, on the right stream
	defer func() { fs.Usage = printUsage }()
	fs.SetOutput(io.err)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(io.out)
		printUsage()
		fs.SetOutput(io.err)
	case err != nil:
		printUsage()
	}
	return err
}

// exitCode is the exit status for an error from parseFlags.
func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
