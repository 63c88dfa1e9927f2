package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReplicatorCollectors(t *testing.T) {
	r := NewReplicator("mail", "rolling")
	r.SetBacklog(7)
	r.ObserveBatch(1500 * time.Millisecond)
	r.UserSynced()
	r.UserSynced()
	r.UserFailed()
	r.Decision("delete", "tombstone")
	r.Decision("delete", "tombstone")
	r.Decision("keep", "none")
	r.Mismatch("replica-only")

	if v := testutil.ToFloat64(r.backlog); v != 7 {
		t.Errorf("backlog %v", v)
	}
	if v := testutil.ToFloat64(r.usersSynced); v != 2 {
		t.Errorf("users synced %v", v)
	}
	if v := testutil.ToFloat64(r.userFailures); v != 1 {
		t.Errorf("failures %v", v)
	}
	if v := testutil.ToFloat64(r.decisions.WithLabelValues("delete", "tombstone")); v != 2 {
		t.Errorf("delete/tombstone %v", v)
	}
	if n := testutil.CollectAndCount(r.batchDuration); n != 1 {
		t.Errorf("histogram series %d", n)
	}

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`cyrusrepl_replicator_sync_log_backlog{mode="rolling",pair="mail"} 7`,
		`cyrusrepl_replicator_decisions_total{action="keep",evidence="none",mode="rolling",pair="mail"} 1`,
		`cyrusrepl_replicator_mismatches_total{kind="replica-only",mode="rolling",pair="mail"} 1`,
		`cyrusrepl_replicator_batch_duration_seconds_count{mode="rolling",pair="mail"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}
