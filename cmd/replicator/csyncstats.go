package main

import (
	"sort"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/executor"
)

// csyncStats counts the csync commands sent to each end and the time they took, for
// the "csync-stats" line printed when a run ends and for /metrics: where a slow batch
// spends its time (a slow replica disk shows in APPLY MAILBOX, a slow master in GET
// FETCH).
type csyncStats struct {
	mu sync.Mutex
	m  map[csyncStatKey]*csyncStat
}

type csyncStatKey struct{ end, command string }

// csyncStat is one end's figures for one command.
type csyncStat struct {
	End     string  `json:"end"`
	Command string  `json:"command"`
	Count   int64   `json:"count"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	// Records and Scanned: for index deltas, the records sent and the index records
	// looked at.
	Records int64 `json:"records,omitempty"`
	Scanned int64 `json:"scanned,omitempty"`
}

// observer returns the csync.Options.Observe hook for one end ("master" or "replica").
func (s *csyncStats) observer(end string) func(cmd string, d time.Duration, err error) {
	return func(cmd string, d time.Duration, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.stat(end, cmd)
		st.Count++
		st.Seconds += d.Seconds()
		if err != nil {
			st.Errors++
		}
	}
}

// index counts one folder update through the master's index, as end "master-index":
// command DELTA (sent as a delta; seconds spent reading indexes), WHOLE (a folder new
// to the replica, every record from the index) or "FALLBACK <reason>" (from GET
// FULLMAILBOX instead).
func (s *csyncStats) index(ev executor.IndexEvent) {
	cmd := "DELTA"
	if ev.Whole {
		cmd = "WHOLE"
	}
	if ev.Reason != "" {
		cmd = "FALLBACK " + ev.Reason
	}
	s.count("master-index", cmd, func(st *csyncStat) {
		st.Seconds += ev.Duration.Seconds()
		st.Records += int64(ev.Records)
		st.Scanned += int64(ev.Scanned)
	})
}

// cache counts one mailbox-level batch planned from the ledger's record of the replica,
// as end "replica-state": command LEDGER (carried out) or "READ <reason>" (the replica
// was read after all); Records counts the folders.
func (s *csyncStats) cache(ev executor.CacheEvent) {
	cmd := "LEDGER"
	if ev.Reason != "" {
		cmd = "READ " + ev.Reason
	}
	s.count("replica-state", cmd, func(st *csyncStat) { st.Records += int64(ev.Folders) })
}

// count counts one event of end and command, with add filling in its other figures.
func (s *csyncStats) count(end, command string, add func(*csyncStat)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stat(end, command)
	st.Count++
	add(st)
}

// stat returns the figures for end and command, created empty (s.mu held).
func (s *csyncStats) stat(end, command string) *csyncStat {
	if s.m == nil {
		s.m = map[csyncStatKey]*csyncStat{}
	}
	k := csyncStatKey{end, command}
	st := s.m[k]
	if st == nil {
		st = &csyncStat{End: end, Command: command}
		s.m[k] = st
	}
	return st
}

// snapshot returns a copy of every figure, by end then command.
func (s *csyncStats) snapshot() []csyncStat {
	s.mu.Lock()
	out := make([]csyncStat, 0, len(s.m))
	for _, st := range s.m {
		out = append(out, *st)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].End != out[j].End {
			return out[i].End < out[j].End
		}
		return out[i].Command < out[j].Command
	})
	return out
}

// csyncStatsLine is the JSON line printed when a run ends.
type csyncStatsLine struct {
	Type     string      `json:"type"`
	Commands []csyncStat `json:"commands"`
}

func (s *csyncStats) line() csyncStatsLine {
	return csyncStatsLine{Type: "csync-stats", Commands: s.snapshot()}
}
