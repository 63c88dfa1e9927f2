package main

import (
	"context"
	"fmt"
	"io"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	register("version", command{
		summary: "print the replicator's version",
		run: func(_ context.Context, _ []string, stdout, _ io.Writer) (int, error) {
			fmt.Fprintln(stdout, version)
			return exitOK, nil
		},
	})
}
