package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// Updates from the master's index (deltas) against a real Cyrus pair: the replica ends
// equal to the master folder by folder, and any doubt falls back to GET FULLMAILBOX and
// is counted.

// indexEvents collects the executor's IndexStats.
type indexEvents struct {
	mu  sync.Mutex
	evs []executor.IndexEvent
}

func (ie *indexEvents) add(ev executor.IndexEvent) {
	ie.mu.Lock()
	ie.evs = append(ie.evs, ev)
	ie.mu.Unlock()
}

func (ie *indexEvents) take() (deltas int, fallbacks map[string]int) {
	ie.mu.Lock()
	defer ie.mu.Unlock()
	fallbacks = map[string]int{}
	for _, ev := range ie.evs {
		if ev.Reason == "" {
			deltas++
		} else {
			fallbacks[ev.Reason]++
		}
	}
	ie.evs = nil
	return deltas, fallbacks
}

// fullCounter counts the master's GET FULLMAILBOX calls.
type fullCounter struct {
	executor.MasterReader
	mu sync.Mutex
	n  int
}

func (f *fullCounter) GetFullMailbox(ctx context.Context, name string) (*csync.Mailbox, error) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	return f.MasterReader.GetFullMailbox(ctx, name)
}

func (f *fullCounter) take() int { f.mu.Lock(); defer f.mu.Unlock(); n := f.n; f.n = 0; return n }

func startIndexEnv(t *testing.T, idx func(*cyrusindex.Local) cyrusindex.Source) (*env, *indexEvents, *fullCounter) {
	t.Helper()
	e := startEnv(t, "delayed", false)
	local, err := cyrusindex.NewLocal(e.p.Master.ConfigPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &indexEvents{}
	e.x.MasterIndex, e.x.IndexStats = idx(local), ev.add
	fc := &fullCounter{MasterReader: e.x.Master}
	e.x.Master = fc
	return e, ev, fc
}

func indexUser(p *cyruspair.Pair) string {
	if p.Namespace == cyruspair.NamespaceDefault {
		return "john.doe@example.com"
	}
	return "fred"
}

// seedIndexUser gives the user an INBOX and a folder with flagged, annotated mail.
func seedIndexUser(t *testing.T, p *cyruspair.Pair, user string) {
	m := p.Master
	m.CreateUser(t, user)
	m.CreateFolder(t, user, "Work")
	for i := 0; i < 5; i++ {
		m.Deliver(t, user, cyruspair.Message(fmt.Sprintf("inbox %d", i), "body"))
		m.Append(t, user, "Work", cyruspair.Message(fmt.Sprintf("work %d", i), "body"), `\Seen`)
	}
	m.Store(t, user, "INBOX", "1:2", "+FLAGS", `\Flagged`, "$Label1")
}

// changeIndexUser changes both folders: new mail, flags, an annotation, an expunge.
func changeIndexUser(t *testing.T, p *cyruspair.Pair, user string) {
	m := p.Master
	m.Deliver(t, user, cyruspair.Message("new", "body"))
	m.Append(t, user, "Work", cyruspair.Message("new work", "body"), "$Other")
	m.Store(t, user, "INBOX", "3", "+FLAGS", `\Answered`, "Project-X")
	m.Store(t, user, "Work", "1", "-FLAGS", `\Seen`)
	c := m.IMAPAs(t, user)
	for _, cmd := range []string{
		"SELECT INBOX",
		`STORE 4 ANNOTATION (/comment (value.shared "shared note" value.priv "mine"))`,
		`STORE 5 +FLAGS (\Deleted)`,
		"EXPUNGE",
	} {
		if _, err := c.Cmd("%s", cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
}

// TestCyrusIndexDeltaUpdate: after the first sync, an update of two changed folders
// (new mail, flags set and cleared, a per-message annotation, an expunge) goes as
// deltas from the master's index, without GET FULLMAILBOX on the master, and leaves
// the replica equal to the master folder by folder, record by record.
func TestCyrusIndexDeltaUpdate(t *testing.T) {
	e, ev, fc := startIndexEnv(t, func(l *cyrusindex.Local) cyrusindex.Source { return l })
	user := indexUser(e.p)
	seedIndexUser(t, e.p, user)
	e.sync(t, user)
	assertEqual(t, e.p, e.p.Replica, user)
	ev.take()
	fc.take()

	changeIndexUser(t, e.p, user)
	e.sync(t, user)
	deltas, fallbacks := ev.take()
	if deltas != 2 || len(fallbacks) != 0 {
		t.Fatalf("update: %d deltas, fallbacks %v; want 2 deltas (INBOX, Work) and no fallback", deltas, fallbacks)
	}
	if n := fc.take(); n != 0 {
		t.Errorf("the delta update still read %d folders with GET FULLMAILBOX on the master", n)
	}
	assertEqual(t, e.p, e.p.Replica, user)

	// And a second round of changes on top of the first delta.
	changeIndexUser(t, e.p, user)
	e.sync(t, user)
	if deltas, fallbacks := ev.take(); deltas != 2 || len(fallbacks) != 0 {
		t.Fatalf("second update: %d deltas, fallbacks %v", deltas, fallbacks)
	}
	assertEqual(t, e.p, e.p.Replica, user)
}

// damagedIndex reads a copy of the folder's files with a damaged record CRC.
type damagedIndex struct{ l *cyrusindex.Local }

func (d damagedIndex) ReadIndex(ctx context.Context, f cyrusindex.Folder, want cyrusindex.Want) (*cyrusindex.Index, error) {
	dir, err := cyrusindex.Dir(d.l.Partitions[f.Partition], f.UniqueID)
	if err != nil {
		return nil, err
	}
	cp, err := os.MkdirTemp("", "damaged-index")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cp)
	for _, name := range []string{cyrusindex.IndexFile, cyrusindex.HeaderFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if name == cyrusindex.IndexFile {
			b[len(b)-20] ^= 0xff // inside the last record: its CRC no longer matches
		}
		if err := os.WriteFile(filepath.Join(cp, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return cyrusindex.Read(cp, cyrusindex.Options{Want: want, Owner: f.Owner})
}

// lyingIndex leaves one changed record out of every delta: a reader bug the replica's
// SYNC_CRC check must catch.
type lyingIndex struct{ l *cyrusindex.Local }

func (li lyingIndex) ReadIndex(ctx context.Context, f cyrusindex.Folder, want cyrusindex.Want) (*cyrusindex.Index, error) {
	idx, err := li.l.ReadIndex(ctx, f, want)
	if err == nil && len(idx.Records) > 0 {
		for i := range idx.Records {
			if idx.Records[i].UID <= want.AfterUID { // a flag change of old mail
				idx.Records = append(idx.Records[:i], idx.Records[i+1:]...)
				break
			}
		}
	}
	return idx, err
}

// TestCyrusIndexDeltaFallback: a damaged index (a record CRC) is refused by the reader,
// and an index that leaves a change out is refused by the replica's SYNC_CRC check;
// either way the update falls back to GET FULLMAILBOX, the fallback is counted with
// its reason, and the replica ends equal to the master.
func TestCyrusIndexDeltaFallback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		idx    func(*cyrusindex.Local) cyrusindex.Source
		reason string
	}{
		{"damaged record", func(l *cyrusindex.Local) cyrusindex.Source { return damagedIndex{l} }, "checksum"},
		{"change left out", func(l *cyrusindex.Local) cyrusindex.Source { return lyingIndex{l} }, "sync-checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ev, fc := startIndexEnv(t, tc.idx)
			user := indexUser(e.p)
			seedIndexUser(t, e.p, user)
			e.sync(t, user)
			ev.take()
			fc.take()
			changeIndexUser(t, e.p, user)
			res := e.sync(t, user)
			deltas, fallbacks := ev.take()
			if fallbacks[tc.reason] == 0 {
				t.Fatalf("no fallback counted for %q: %d deltas, fallbacks %v", tc.reason, deltas, fallbacks)
			}
			if fc.take() == 0 {
				t.Fatal("fell back without GET FULLMAILBOX")
			}
			if !res.Equal {
				t.Fatalf("not equal after the fallback: %+v", res)
			}
			assertEqual(t, e.p, e.p.Replica, user)
			t.Logf("%d deltas, fallbacks %v", deltas, fallbacks)
		})
	}
}

// TestCyrusIndexDeltaUnderWriters: updates run while lmtpd delivers and an IMAP client
// flips flags on every message of the INBOX. Every batch succeeds; updates go as deltas
// (a fallback is allowed only when the replica moved since its state was read); once
// the writers stop, one more pass leaves the replica equal to the master.
func TestCyrusIndexDeltaUnderWriters(t *testing.T) {
	e, ev, _ := startIndexEnv(t, func(l *cyrusindex.Local) cyrusindex.Source { return l })
	user := indexUser(e.p)
	m := e.p.Master
	seedIndexUser(t, e.p, user)
	e.sync(t, user)
	ev.take()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := m.DeliverLMTP([]string{user}, cyruspair.Message(fmt.Sprintf("live %d", i), "body")); err != nil {
				t.Errorf("deliver: %v", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		c := m.IMAPAs(t, user)
		if _, err := c.Cmd("SELECT INBOX"); err != nil {
			t.Errorf("select: %v", err)
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Cmd("STORE 1:* %s (\\Flagged $Busy)", []string{"+FLAGS", "-FLAGS"}[i%2]); err != nil {
				t.Errorf("store: %v", err)
				return
			}
		}
	}()
	syncs := 0
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline) || syncs < 6; syncs++ {
		i := syncs
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := e.x.Sync(ctx, []string{user}, false)
		cancel()
		if err != nil && !errors.Is(err, executor.ErrChangedUnderUs) {
			close(stop)
			wg.Wait()
			t.Fatalf("sync %d under writers: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	deltas, fallbacks := ev.take()
	for reason := range fallbacks {
		if reason != "sync-changed" {
			t.Errorf("fallback %q under writers (all: %v)", reason, fallbacks)
		}
	}
	if deltas == 0 {
		t.Fatalf("no delta under writers: fallbacks %v", fallbacks)
	}
	e.sync(t, user)
	assertEqual(t, e.p, e.p.Replica, user)
	t.Logf("under writers: %d syncs, %d deltas, fallbacks %v", syncs, deltas, fallbacks)
}
