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
