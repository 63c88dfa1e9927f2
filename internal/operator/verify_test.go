package operator

import (
	"strings"
	"testing"
	"time"
)

func TestResyncNameFitsForLongestPair(t *testing.T) {
	pair := strings.Repeat("a", 47) + "b"
	for _, n := range []string{
		ScheduledVerifyName(pair, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)),
		RequestedVerifyName(pair, "2026-12-06T11:00:00Z"),
		ResyncName("short", "verify", "x"),
	} {
		if len(n) > MaxResyncName || strings.Contains(n, "--") {
			t.Errorf("name %q: %d characters", n, len(n))
		}
	}
	if got := ResyncName("short", "verify", "x"); got != "short-verify-x" {
		t.Errorf("short pair: %q", got)
	}
	if got := ResyncName(strings.Repeat("a", 30)+"-"+strings.Repeat("b", 17), "verify", "1234567890"); strings.HasSuffix(strings.TrimSuffix(got, "-verify-1234567890"), "-") {
		t.Errorf("cut left a dash: %q", got)
	}
}

func TestDueRun(t *testing.T) {
	sched, err := ParseSchedule("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, time.UTC) }
	// Not yet due.
	if _, ok, next := DueRun(sched, day(1, 12, 0), day(2, 2, 59)); ok || !next.Equal(day(2, 3, 0)) {
		t.Fatalf("before 03:00: ok %v next %v", ok, next)
	}
	// Due, and several missed runs give only the latest.
	if due, ok, next := DueRun(sched, day(1, 3, 0), day(3, 4, 0)); !ok || !due.Equal(day(3, 3, 0)) || !next.Equal(day(4, 3, 0)) {
		t.Fatalf("missed runs: due %v ok %v next %v", due, ok, next)
	}
	// Long behind: still only the latest, quickly.
	if due, ok, _ := DueRun(sched, day(1, 0, 0).AddDate(-3, 0, 0), day(3, 4, 0)); !ok || !due.Equal(day(3, 3, 0)) {
		t.Fatalf("years behind: due %v ok %v", due, ok)
	}
	if _, err := ParseSchedule("61 * * * *"); err == nil || !strings.Contains(err.Error(), "spec.verify.schedule") {
		t.Fatalf("bad schedule: %v", err)
	}
}
