package csync

import (
	"context"
	"fmt"
)

// reader holds the GET commands; MasterConn and ReplicaConn embed it.
type reader struct{ c *Conn }

// Capabilities returns what the banner advertised.
func (r reader) Capabilities() Capabilities { return r.c.Capabilities() }

// Addr is the server address.
func (r reader) Addr() string { return r.c.Addr() }

// Err is nil while the connection is usable (see Conn.Err).
func (r reader) Err() error { return r.c.Err() }

// Compressed reports whether COMPRESS DEFLATE is active.
func (r reader) Compressed() bool { return r.c.Compressed() }

// Noop sends NOOP.
func (r reader) Noop(ctx context.Context) error { return r.c.Noop(ctx) }

// Restart sends RESTART.
func (r reader) Restart(ctx context.Context) error { return r.c.Restart(ctx) }

// Exit sends EXIT and closes the connection.
func (r reader) Exit(ctx context.Context) error { return r.c.Exit(ctx) }

// Close closes the connection without EXIT.
func (r reader) Close() error { return r.c.Close() }

// GetRaw sends `GET key arg` and returns the data lines as decoded dlists.
func (r reader) GetRaw(ctx context.Context, key string, arg Value) ([]Data, error) {
	var out []Data
	err := r.c.do(ctx, "GET", key, arg, func(k string, v Value) error {
		out = append(out, Data{Key: k, Value: v})
		return nil
	})
	return out, err
}

// GetUser returns a user's full state: mailboxes (including DELETED.* ones, never
// tombstones), quotas, seen, subscriptions, sieve. An unknown user gives an empty state.
func (r reader) GetUser(ctx context.Context, userid string) (*UserState, error) {
	u := &UserState{}
	err := r.c.do(ctx, "GET", "USER", Str(userid), func(key string, v Value) error {
		switch key {
		case "MAILBOX":
			m, err := ParseMailbox(v)
			if err != nil {
				return err
			}
			u.Mailboxes = append(u.Mailboxes, *m)
		case "QUOTA":
			q, err := ParseQuota(v)
			if err != nil {
				return err
			}
			u.Quotas = append(u.Quotas, *q)
		default:
			return metaLine(key, v, &u.Seen, &u.Subscriptions, &u.Sieve, &u.Other)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func metaLine(key string, v Value, seen *[]Seen, subs *[]string, sieve *[]Sieve, other *[]Data) error {
	switch key {
	case "SEEN":
		s, err := ParseSeen(v)
		if err != nil {
			return err
		}
		*seen = append(*seen, *s)
	case "LSUB":
		names, err := listStrings(v)
		if err != nil {
			return fmt.Errorf("LSUB: %w", err)
		}
		*subs = append(*subs, names...)
	case "SIEVE":
		s, err := ParseSieve(v)
		if err != nil {
			return err
		}
		*sieve = append(*sieve, *s)
	default:
		*other = append(*other, Data{Key: key, Value: v})
	}
	return nil
}

// GetMeta returns a user's seen state, subscriptions and (without SIEVE-MAILBOX) sieve.
func (r reader) GetMeta(ctx context.Context, userid string) (*Meta, error) {
	m := &Meta{}
	err := r.c.do(ctx, "GET", "META", Str(userid), func(key string, v Value) error {
		return metaLine(key, v, &m.Seen, &m.Subscriptions, &m.Sieve, &m.Other)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (r reader) mailboxes(ctx context.Context, key string, arg Value) ([]Mailbox, error) {
	var out []Mailbox
	err := r.c.do(ctx, "GET", key, arg, func(k string, v Value) error {
		if k != "MAILBOX" {
			return nil
		}
		m, err := ParseMailbox(v)
		if err != nil {
			return err
		}
		out = append(out, *m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetMailboxes returns the live mailboxes (and intermediates) among the internal names;
// unknown names and tombstones are skipped silently by the server.
func (r reader) GetMailboxes(ctx context.Context, names []string) ([]Mailbox, error) {
	return r.mailboxes(ctx, "MAILBOXES", StrList(names))
}

// GetUniqueIDs returns the live mailboxes with the given uniqueids, whatever their names.
func (r reader) GetUniqueIDs(ctx context.Context, ids []string) ([]Mailbox, error) {
	return r.mailboxes(ctx, "UNIQUEIDS", StrList(ids))
}

// GetFullMailbox returns one mailbox with every index record (expunged ones included).
// A missing mailbox gives ErrMailboxNonexistent.
func (r reader) GetFullMailbox(ctx context.Context, name string) (*Mailbox, error) {
	ms, err := r.mailboxes(ctx, "FULLMAILBOX", Str(name))
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, fmt.Errorf("%w: GET FULLMAILBOX %s returned %d mailboxes", ErrGarbled, name, len(ms))
	}
	return &ms[0], nil
}

// GetQuota returns the quota root, or nil when it has none.
func (r reader) GetQuota(ctx context.Context, root string) (*Quota, error) {
	var q *Quota
	err := r.c.do(ctx, "GET", "QUOTA", Str(root), func(k string, v Value) error {
		if k != "QUOTA" {
			return nil
		}
		var err error
		q, err = ParseQuota(v)
		return err
	})
	return q, err
}

// GetAnnotation returns the mailbox-level annotations of mboxname ("" = server).
func (r reader) GetAnnotation(ctx context.Context, mboxname string) ([]MailboxAnnotation, error) {
	var out []MailboxAnnotation
	err := r.c.do(ctx, "GET", "ANNOTATION", Str(mboxname), func(k string, v Value) error {
		if k != "ANNOTATION" {
			return nil
		}
		a, err := ParseMailboxAnnotation(v)
		if err != nil {
			return err
		}
		out = append(out, *a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FetchSieve returns one sieve script with its content (GET FETCH_SIEVE).
func (r reader) FetchSieve(ctx context.Context, userid, filename string) (*Sieve, error) {
	var s *Sieve
	arg := KV(F("USERID", Str(userid)), F("FILENAME", Str(filename)))
	err := r.c.do(ctx, "GET", "FETCH_SIEVE", arg, func(k string, v Value) error {
		if k != "SIEVE" {
			return nil
		}
		var err error
		s, err = ParseSieve(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%w: GET FETCH_SIEVE returned no SIEVE line", ErrGarbled)
	}
	return s, nil
}
