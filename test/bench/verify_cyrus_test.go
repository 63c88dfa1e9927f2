package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// failRecorder is a testing.TB whose Fatalf records the message instead of ending the
// test, so that a test can check that compareReplicas fails when it should.
type failRecorder struct {
	testing.TB
	fatal string
}

func (f *failRecorder) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }

// compareReplicas passes on equal replicas and fails on a message missing from one
// replica and on a flag that differs while the message counts are equal.
func TestCyrusCompareReplicasSeesMessagesAndFlags(t *testing.T) {
	p := cyruspair.Start(t, cyruspair.Options{SecondReplica: true})
	m := p.Master
	m.CreateUser(t, "cmp")
	m.Deliver(t, "cmp", cyruspair.Message("one", "first\n"))
	syncBoth := func() {
		t.Helper()
		for _, r := range []*cyruspair.Instance{p.Replica, p.Replica2} {
			if out, err := p.StockSyncClient(t, r, "-u", "cmp"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
	}
	check := func(want string) {
		t.Helper()
		rec := &failRecorder{TB: t}
		compareReplicas(rec, p, []string{"cmp"}, "check")
		switch {
		case want == "" && rec.fatal != "":
			t.Fatalf("equal replicas reported as different: %s", rec.fatal)
		case want != "" && !strings.Contains(rec.fatal, want):
			t.Fatalf("want a failure mentioning %q, got %q", want, rec.fatal)
		}
	}
	syncBoth()
	check("")

	m.Deliver(t, "cmp", cyruspair.Message("two", "second\n"))
	if out, err := p.StockSyncClient(t, p.Replica, "-u", "cmp"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check("replica2 (stock) user.cmp: last uid 1, master 2")

	syncBoth()
	m.Store(t, "cmp", "INBOX", "1", "+FLAGS", `\Flagged`)
	if out, err := p.StockSyncClient(t, p.Replica2, "-u", "cmp"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check(`replica user.cmp: 2 records, master 2; first difference`)
}
