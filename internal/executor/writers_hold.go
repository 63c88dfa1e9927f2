package executor

import (
	"context"
	"slices"
	"time"
)

// writerLine is the JSON line written when an executor takes or releases users' writer
// locks: the record that no two writers held a user at once.
type writerLine struct {
	Type   string   `json:"type"` // "writer-lock"
	Event  string   `json:"event"`
	Users  []string `json:"users"`
	At     string   `json:"at"`
	WaitMS int64    `json:"waitMs,omitempty"`
}

// holdWriters makes sure the executor holds the writer locks of users before it reads
// them to plan. When the set grew (a cross-user rename joined a user) it releases what
// it holds and takes the whole set again in order; the caller reads both ends again
// after a join anyway.
func (x *Executor) holdWriters(ctx context.Context, users []string) error {
	if x.Writers == nil {
		return nil
	}
	if !slices.ContainsFunc(users, func(u string) bool { return !slices.Contains(x.writersHeld, u) }) {
		return nil
	}
	x.releaseWriters()
	start := time.Now()
	release, err := x.Writers.Lock(ctx, users)
	if err != nil {
		return err
	}
	x.writersHeld, x.writersRelease = slices.Clone(users), release
	x.emit(writerLine{Type: "writer-lock", Event: "held", Users: x.writersHeld, At: time.Now().UTC().Format(time.RFC3339Nano), WaitMS: time.Since(start).Milliseconds()})
	return nil
}

// releaseWriters releases the writer locks the executor holds, if any.
func (x *Executor) releaseWriters() {
	if x.writersRelease == nil {
		return
	}
	x.emit(writerLine{Type: "writer-lock", Event: "released", Users: x.writersHeld, At: time.Now().UTC().Format(time.RFC3339Nano)})
	x.writersRelease()
	x.writersHeld, x.writersRelease = nil, nil
}
