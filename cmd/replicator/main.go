// Command replicator keeps a Cyrus IMAP replica in step with its master, user by user,
// speaking the Cyrus sync protocol (csync) to both. It reads the master through a
// read-only connection and writes only to the replica.
//
// Each mode lives in its own file and registers itself in commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes shared by every mode.
const (
	exitOK       = 0
	exitFailed   = 1 // some user failed, or differences remain (verify)
	exitUsage    = 2 // bad flags, unreachable server, wrong credentials
	exitInternal = 3
)

// usageError marks errors that must exit with exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// command is one mode of the replicator.
type command struct {
	summary string
	// run executes the mode and returns the process exit code, or an error; a usageError
	// exits with exitUsage, any other error with exitFailed.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error)
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "replicator: unknown command %q\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	code, err := c.run(ctx, args[1:], stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "replicator %s: %v\n", args[0], err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		if code == exitOK {
			code = exitFailed
		}
	}
	return code
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: replicator <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'replicator <command> -h' for the flags of a command")
}
