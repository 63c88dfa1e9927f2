package mboxdb

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/twoskip"
)

// runGo answers cmds like `cyr_dbtool … batch` does (GET key: the record if it
// exists; SHOW prefix: every record with that prefix, in key order; the answers in
// the order of the commands), reading the file with the Go twoskip reader in one view of it, each
// query's range found through the skip list (twoskip.Ranges).
// Only the records asked for are kept; a single SHOW (Users) streams them to fn.
func (r *Reader) runGo(ctx context.Context, cmds []string, restart func(), fn func(dbRecord)) error {
	type query struct {
		show bool
		key  []byte
		recs []dbRecord
	}
	qs := make([]*query, 0, len(cmds))
	for _, c := range cmds {
		verb, key, _ := strings.Cut(c, " ")
		if verb != "SHOW" && verb != "GET" {
			return fmt.Errorf("mailboxes.db: refusing %q: only SHOW and GET are read", verb)
		}
		qs = append(qs, &query{show: verb == "SHOW", key: []byte(key)})
	}
	if len(qs) == 0 {
		return nil
	}
	stream := len(qs) == 1 && qs[0].show
	prefixes := make([][]byte, len(qs))
	for i, q := range qs {
		prefixes[i] = q.key // a GET's key is the start of its range; only the key itself is kept
	}
	reset := func() {
		for _, q := range qs {
			q.recs = q.recs[:0]
		}
		if stream && restart != nil {
			restart()
		}
	}
	seen := 0
	err := twoskip.Ranges(r.DB, prefixes, reset, func(k, v []byte) error {
		if seen++; seen%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec := dbRecord{key: string(k), val: string(v)}
		if stream {
			fn(rec)
			return nil
		}
		for _, q := range qs {
			if q.show && bytes.HasPrefix(k, q.key) || !q.show && bytes.Equal(k, q.key) {
				q.recs = append(q.recs, rec)
			}
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("mailboxes.db %s: %w", r.DB, err)
	}
	for _, q := range qs {
		for _, rec := range q.recs {
			fn(rec)
		}
	}
	return nil
}
