package main

import (
	"context"
	"io"
)

func init() {
	register("verify", command{
		summary: "compare the named users at both ends and report, changing nothing (0: equal, 1: differences)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
			return runUsers(ctx, "verify", true, args, stdout, stderr)
		},
	})
}
