//go:build e2e

package e2e

import "testing"

// TestTableCells: an empty cell (the Lag column of a pair with nothing pending) does
// not shift the cells after it. Needs no cluster.
func TestTableCells(t *testing.T) {
	header := "NAME   READY   IN-SYNC   SPLIT-BRAIN   BACKLOG   LAG   LAST-BATCH   STATUS      AGE"
	row := "demo   True    True      False         0               3s           Available   14s"
	got := tableCells(header, row)
	for k, want := range map[string]string{"NAME": "demo", "BACKLOG": "0", "LAG": "", "LAST-BATCH": "3s", "STATUS": "Available", "AGE": "14s"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q (%v)", k, got[k], want, got)
		}
	}
	if got := tableCells(header, "demo   True    True      False         3         5m    3s           Available   14s"); got["LAG"] != "5m" {
		t.Errorf("LAG = %q", got["LAG"])
	}
}

// TestLastSyncedLine: the batch that synced a user is found even when a later batch of
// the same user found it equal, and bodies sent after it are counted. Needs no cluster.
func TestLastSyncedLine(t *testing.T) {
	logs := `{"type":"user","user":"alice","outcome":"synced","bodiesSent":3}
{"type":"user","user":"bob","outcome":"synced","bodiesSent":1}
{"type":"decision","user":"alice"}
{"type":"user","user":"alice","outcome":"synced","bodiesSent":0}
{"type":"user","user":"alice","outcome":"equal","bodiesSent":0}
not json`
	u, later, ok := lastSyncedLine(logs, "alice")
	if !ok || u.BodiesSent != 0 || later != 0 {
		t.Fatalf("got %+v, %d later, found %v", u, later, ok)
	}
	if _, later, _ := lastSyncedLine(logs+"\n"+`{"type":"user","user":"alice","outcome":"failed","bodiesSent":2}`, "alice"); later != 2 {
		t.Fatalf("bodies after the synced line: %d, want 2", later)
	}
	if _, _, ok := lastSyncedLine(logs, "carol"); ok {
		t.Fatal("found a line for carol")
	}
}
