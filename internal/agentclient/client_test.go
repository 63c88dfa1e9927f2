package agentclient

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// fixture is an agent served in this process over TLS for a configuration directory of
// its own (no Cyrus): the channel's files are written by the test as Cyrus would.
type fixture struct {
	dir, logDir string
	client      *Client
}

func newFixture(t testing.TB, wait time.Duration) *fixture { return newFixtureTTL(t, wait, 0) }

func newFixtureTTL(t testing.TB, wait, ttl time.Duration) *fixture {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "imapd.conf")
	if err := os.WriteFile(conf, []byte("configdirectory: "+dir+"\nsync_log: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "sync")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := agent.New(agent.Options{MasterConfig: conf, TokenFile: tok, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Config.ConnContext, hs.Config.ConnState = srv.ConnContext, srv.ConnState
	hs.Config.ErrorLog = nil
	hs.StartTLS()
	t.Cleanup(hs.Close)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{URL: hs.URL, TokenFile: tok, CAFile: ca, Consumer: "test", Owner: "test-state", Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, logDir: logDir, client: c}
}

func (f *fixture) append(t testing.TB, lines ...string) {
	t.Helper()
	fh, err := os.OpenFile(filepath.Join(f.logDir, "log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	for _, l := range lines {
		if _, err := io.WriteString(fh, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func entries(s *synclog.Scanner) []string {
	var out []string
	for {
		e, _, ok := s.Next()
		if !ok {
			return out
		}
		out = append(out, e.String())
	}
}

// TestTakeAcknowledgesOnlyWhatWasHandled: a handler error leaves log-run and the same
// entries come again, reprocessed; a handler that stops early is not acknowledged
// either; success removes log-run.
func TestTakeAcknowledgesOnlyWhatWasHandled(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	ctx := context.Background()
	f.append(t, "APPEND user.alice", "MAILBOX user.bob")
	var got []string
	err := f.client.Take(ctx, func(s *synclog.Scanner, reprocessed bool) error {
		got = entries(s)
		return errors.New("replica down")
	})
	if err == nil || !slices.Equal(got, []string{"APPEND user.alice", "MAILBOX user.bob"}) {
		t.Fatalf("first take: %v %v", err, got)
	}
	if _, err := os.Stat(filepath.Join(f.logDir, "log-run")); err != nil {
		t.Fatalf("log-run gone after a failed handler: %v", err)
	}
	err = f.client.Take(ctx, func(s *synclog.Scanner, reprocessed bool) error {
		if !reprocessed {
			t.Error("second take not marked reprocessed")
		}
		s.Next() // stops after one entry
		return nil
	})
	if err == nil {
		t.Fatal("a handler that stopped early was acknowledged")
	}
	err = f.client.Take(ctx, func(s *synclog.Scanner, reprocessed bool) error {
		got = entries(s)
		return nil
	})
	if err != nil || len(got) != 2 {
		t.Fatalf("third take: %v %v", err, got)
	}
	if _, err := os.Stat(filepath.Join(f.logDir, "log-run")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log-run after the acknowledgement: %v", err)
	}
	start := time.Now()
	if err := f.client.WithoutWait().Take(ctx, func(*synclog.Scanner, bool) error { return nil }); !errors.Is(err, synclog.ErrNoLog) {
		t.Fatalf("empty channel: %v, want ErrNoLog", err)
	}
	if waited := time.Since(start); waited > 5*time.Second { // the long-poll would be 10s
		t.Fatalf("WithoutWait waited %v", waited)
	}
	b, err := f.client.Backlog(ctx)
	if err != nil || b.Entries != 0 || !b.Since.IsZero() {
		t.Fatalf("backlog of an empty channel: %+v %v", b, err)
	}
	f.append(t, "USER alice")
	if b, err = f.client.Backlog(ctx); err != nil || b.Entries != 1 || b.Since.IsZero() {
		t.Fatalf("backlog: %+v %v", b, err)
	}
}

// TestLeaseExpires: a lease unacknowledged for the lease TTL is handed out again; the
// late acknowledgement is refused and removes nothing.
func TestLeaseExpires(t *testing.T) {
	f := newFixtureTTL(t, 10*time.Second, 300*time.Millisecond)
	f.append(t, "APPEND user.alice")
	err := f.client.Take(context.Background(), func(s *synclog.Scanner, _ bool) error {
		entries(s)
		time.Sleep(time.Second) // longer than the TTL
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("late acknowledgement: %v, want a 409 refusal", err)
	}
	var reprocessed bool
	var got []string
	err = f.client.Take(context.Background(), func(s *synclog.Scanner, r bool) error {
		reprocessed, got = r, entries(s)
		return nil
	})
	if err != nil || !reprocessed || !slices.Equal(got, []string{"APPEND user.alice"}) {
		t.Fatalf("after the expiry: %v reprocessed=%v %v", err, reprocessed, got)
	}
}

// TestTakeCutShort: a long-poll whose ctx ends returns ErrNoLog and takes nothing.
func TestTakeCutShort(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := f.client.Take(ctx, func(*synclog.Scanner, bool) error {
		t.Error("handler called on an empty channel")
		return nil
	})
	if !errors.Is(err, synclog.ErrNoLog) {
		t.Fatalf("cut long-poll: %v, want ErrNoLog", err)
	}
}

// BenchmarkLeaseLatency measures how long a sync-log line written while a replicator
// long-polls takes to reach its handler (the agent looks at the channel every 25 ms).
// One op is one line; p50 and p99 are reported.
func BenchmarkLeaseLatency(b *testing.B) {
	f := newFixture(b, 10*time.Second)
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		got := make(chan time.Time, 1)
		errc := make(chan error, 1)
		go func() {
			errc <- f.client.Take(ctx, func(s *synclog.Scanner, _ bool) error {
				got <- time.Now()
				entries(s)
				return nil
			})
		}()
		time.Sleep(30 * time.Millisecond) // the request is waiting
		written := time.Now()
		f.append(b, fmt.Sprintf("APPEND user.u%d", i))
		lat = append(lat, (<-got).Sub(written))
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
