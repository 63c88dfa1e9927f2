package csync

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// An unknown command word against the real server: BAD, typed, and the Conn refuses
// reuse. (The public API cannot send an unknown verb; this uses the internal do.)
func TestRealServerUnknownCommand(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, p.Replica.SyncAddr, Options{Username: p.ReplUser, Password: p.ReplPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.do(ctx, "FROBNICATE", "X", Str("y"), nil)
	var se *ServerError
	if !errors.Is(err, ErrBadCommand) || !errors.Is(err, ErrProtocol) || !errors.As(err, &se) ||
		se.Line != "BAD IMAP_PROTOCOL_ERROR Unrecognized command" {
		t.Fatalf("unknown command: %v", err)
	}
	if err := c.Noop(ctx); !errors.Is(err, ErrBroken) {
		t.Fatalf("reuse after BAD: %v", err)
	}
}
