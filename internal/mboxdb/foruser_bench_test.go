package mboxdb

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// BenchmarkForUsers reads one user's evidence (its folders' N records and I records) per
// iteration, as a batch of the rolling replicator does, from the mailboxes.db of the
// imapd.conf in CYRUSREPL_MBOXDB_BENCH_CONF, with each backend. Point it at a large one
// (e.g. a master left by the fleet benchmark at 1,000 users): a linear walk's cost grows
// with the file, the skip list's does not.
func BenchmarkForUsers(b *testing.B) {
	conf := os.Getenv("CYRUSREPL_MBOXDB_BENCH_CONF")
	if conf == "" {
		b.Skip("CYRUSREPL_MBOXDB_BENCH_CONF names no imapd.conf")
	}
	for _, backend := range []string{BackendCyrDBTool, BackendGo} {
		b.Run(backend, func(b *testing.B) {
			r, err := NewReader("", conf)
			if err != nil {
				b.Fatal(err)
			}
			r.Backend = backend
			users, err := r.Users(context.Background())
			if err != nil || len(users) == 0 {
				b.Fatalf("users: %v %v", len(users), err)
			}
			var uids []string
			db, err := r.ForUsers(context.Background(), users[len(users)/2:len(users)/2+1], nil)
			if err != nil {
				b.Fatal(err)
			}
			for uid := range db.Live {
				uids = append(uids, uid)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				u := users[(i*7919)%len(users)]
				if _, err := r.ForUsers(context.Background(), []string{u}, uids); err != nil {
					b.Fatal(fmt.Errorf("%s: %w", u, err))
				}
			}
		})
	}
}
