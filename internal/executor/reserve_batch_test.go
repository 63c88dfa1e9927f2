package executor

import (
	"context"
	"iter"
	"slices"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// linkingReplica answers APPLY RESERVE like sync_server: a GUID is found when one of
// the named mailboxes already holds it (here: was applied earlier).
type linkingReplica struct {
	scripted
	reserveNames [][]string
	uploads      int // APPLY MESSAGE calls
}

func (r *linkingReplica) ApplyReserve(_ context.Context, _ string, names, guids []string) ([]string, error) {
	r.reserveNames = append(r.reserveNames, slices.Clone(names))
	var missing []string
	for _, g := range guids {
		found := false
		for _, m := range r.applied {
			if slices.Contains(names, m.Name) && slices.ContainsFunc(m.Records, func(rec csync.Record) bool { return rec.GUID == g }) {
				found = true
			}
		}
		if !found {
			missing = append(missing, g)
		}
	}
	return missing, nil
}

func (r *linkingReplica) ApplyMessage(context.Context, iter.Seq2[csync.Message, error]) (int, error) {
	r.uploads++
	return 0, nil
}

// A body COPYed into several folders that are all new on the replica is uploaded once:
// later folders of the batch RESERVE it from the folder created before them.
func TestCreateReservesFromFoldersCreatedInBatch(t *testing.T) {
	recs := []csync.Record{{UID: 1, ModSeq: 2, GUID: "g1"}}
	master := &scripted{full: map[string]*csync.Mailbox{
		"user.a":      {UniqueID: "u1", Name: "user.a", LastUID: 1, Records: recs},
		"user.a.Copy": {UniqueID: "u2", Name: "user.a.Copy", LastUID: 1, Records: recs},
	}}
	replica := &linkingReplica{}
	x := &Executor{Master: master, Replica: replica}
	p := &plan.Plan{Actions: []plan.Action{{Op: plan.OpCreate, Name: "user.a", UniqueID: "u1"}, {Op: plan.OpCreate, Name: "user.a.Copy", UniqueID: "u2"}}}
	if _, err := x.Execute(context.Background(), p, plan.Input{}); err != nil {
		t.Fatal(err)
	}
	if replica.uploads != 1 {
		t.Fatalf("APPLY MESSAGE calls: %d, want 1 (RESERVE names %v)", replica.uploads, replica.reserveNames)
	}
	if len(replica.reserveNames) != 1 || !slices.Equal(replica.reserveNames[0], []string{"user.a"}) {
		t.Fatalf("RESERVE names: %v, want [[user.a]]", replica.reserveNames)
	}
}
