package replication

import "github.com/cyrusrepl/cyrusrepl/internal/report"

// SetProgress records how far the current pass over users has come. The summary keeps
// its own copy: the value is never changed once set, only replaced.
func (r *Recorder) SetProgress(p report.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Progress = &p
}

// SetSeed records where seeding stands (rolling mode).
func (r *Recorder) SetSeed(s report.Seed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Seed = &s
}
