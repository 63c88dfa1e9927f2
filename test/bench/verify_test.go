package bench

// After every phase both replicas are compared with the master, user by user and folder
// by folder, over csync (read-only GET sessions): the same folders (name, uniqueid,
// uidvalidity, last UID) and, in each, the same message records (UID, GUID, flags,
// internal date). A benchmark whose replicas differ from the master measured nothing,
// so a difference fails it.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// compareReplicas fails the benchmark unless Replica and Replica2 hold what the master
// holds for every user. phase names the check in the failure.
func compareReplicas(b testing.TB, p *cyruspair.Pair, users []string, phase string) {
	b.Helper()
	start := time.Now()
	ends := []*cyruspair.Instance{p.Master, p.Replica, p.Replica2}
	workers := min(4, len(users))
	idx := make(chan string)
	var mu sync.Mutex
	var diffs []string
	folders := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns, err := dialEnds(p, ends)
			if err != nil {
				mu.Lock()
				diffs = append(diffs, err.Error())
				mu.Unlock()
				for range idx {
				}
				return
			}
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			for u := range idx {
				n, d := compareUser(conns, u)
				mu.Lock()
				folders += n
				diffs = append(diffs, d...)
				mu.Unlock()
			}
		}()
	}
	for _, u := range users {
		idx <- u
	}
	close(idx)
	wg.Wait()
	if len(diffs) > 0 {
		sort.Strings(diffs)
		b.Fatalf("%s: the replicas differ from the master (%d differences):\n%s", phase, len(diffs),
			strings.Join(firstN(diffs, 30), "\n"))
		return
	}
	fmt.Printf("    %s: both replicas equal the master: %d users, %d folders, records compared (%.1fs)\n",
		phase, len(users), folders, time.Since(start).Seconds())
}

func dialEnds(p *cyruspair.Pair, ends []*cyruspair.Instance) ([]*csync.MasterConn, error) {
	var out []*csync.MasterConn
	for _, in := range ends {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := csync.DialMaster(ctx, in.SyncAddr, csync.Options{
			Username: p.ReplUser, Password: p.ReplPassword, TLS: p.ClientTLS(), Timeout: 5 * time.Minute})
		cancel()
		if err != nil {
			for _, o := range out {
				_ = o.Close()
			}
			return nil, fmt.Errorf("dial %s: %w", in.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// compareUser compares one user at the master (conns[0]) with each replica; it returns
// the folders compared and the differences found.
func compareUser(conns []*csync.MasterConn, user string) (int, []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	master, err := folderStates(ctx, conns[0], user)
	if err != nil {
		return 0, []string{fmt.Sprintf("%s: master: %v", user, err)}
	}
	var diffs []string
	for i, c := range conns[1:] {
		end := []string{"replica", "replica2 (stock)"}[i]
		replica, err := folderStates(ctx, c, user)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %s: %v", user, end, err))
			continue
		}
		for name, m := range master {
			r, ok := replica[name]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %s lacks %s", user, end, name))
				continue
			}
			if d := m.diff(r); d != "" {
				diffs = append(diffs, fmt.Sprintf("%s: %s %s: %s", user, end, name, d))
			}
		}
		for name := range replica {
			if _, ok := master[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %s has %s, the master does not", user, end, name))
			}
		}
	}
	return len(master), diffs
}

// folderState is what the comparison looks at in one folder.
type folderState struct {
	uniqueID    string
	uidValidity uint32
	lastUID     uint32
	records     []string // "uid guid flags internaldate", in UID order
}

func (m folderState) diff(r folderState) string {
	switch {
	case m.uniqueID != r.uniqueID:
		return fmt.Sprintf("uniqueid %s, master %s", r.uniqueID, m.uniqueID)
	case m.uidValidity != r.uidValidity:
		return fmt.Sprintf("uidvalidity %d, master %d", r.uidValidity, m.uidValidity)
	case m.lastUID != r.lastUID:
		return fmt.Sprintf("last uid %d, master %d", r.lastUID, m.lastUID)
	case !slices.Equal(m.records, r.records):
		for k := range max(len(m.records), len(r.records)) {
			var a, c string
			if k < len(m.records) {
				a = m.records[k]
			}
			if k < len(r.records) {
				c = r.records[k]
			}
			if a != c {
				return fmt.Sprintf("%d records, master %d; first difference: %q, master %q", len(r.records), len(m.records), c, a)
			}
		}
	}
	return ""
}

func folderStates(ctx context.Context, c *csync.MasterConn, user string) (map[string]folderState, error) {
	st, err := c.GetUser(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("GET USER: %w", err)
	}
	out := make(map[string]folderState, len(st.Mailboxes))
	for _, mb := range st.Mailboxes {
		full, err := c.GetFullMailbox(ctx, mb.Name)
		if err != nil {
			return nil, fmt.Errorf("GET FULLMAILBOX %s: %w", mb.Name, err)
		}
		fs := folderState{uniqueID: full.UniqueID, uidValidity: full.UIDValidity, lastUID: full.LastUID}
		for _, r := range full.Records {
			flags := make([]string, len(r.Flags))
			for k, f := range r.Flags {
				flags[k] = strings.ToLower(f)
			}
			sort.Strings(flags)
			fs.records = append(fs.records, fmt.Sprintf("%d %s (%s) %d", r.UID, r.GUID, strings.Join(flags, " "), r.InternalDate))
		}
		out[mb.Name] = fs
	}
	return out, nil
}
