package csync

import (
	"context"
	"fmt"
	"io"
	"iter"
)

// ApplyRaw sends `APPLY key arg` and returns the data lines.
func (w *ReplicaConn) ApplyRaw(ctx context.Context, key string, arg Value) ([]Data, error) {
	var out []Data
	err := w.c.do(ctx, "APPLY", key, arg, func(k string, v Value) error {
		out = append(out, Data{Key: k, Value: v})
		return nil
	})
	return out, err
}

func (w *ReplicaConn) apply(ctx context.Context, key string, arg Value) error {
	return w.c.do(ctx, "APPLY", key, arg, nil)
}

func local(isLocal bool, key string) string {
	if isLocal {
		return "LOCAL_" + key
	}
	return key
}

// ApplyCapabilities enables session capabilities (e.g. SIEVE-MAILBOX) and returns what
// the server enabled; unknown ones are dropped by the server.
func (w *ReplicaConn) ApplyCapabilities(ctx context.Context, caps []string) ([]string, error) {
	return w.c.enableCaps(ctx, caps)
}

// ApplyReserve asks the replica to stage the GUIDs from copies it already holds in the
// named mailboxes, and returns the GUIDs it is missing (to be sent by ApplyMessage on
// the same partition). sync_client sends at most 8193 GUIDs per RESERVE; batching is
// the caller's choice.
func (w *ReplicaConn) ApplyReserve(ctx context.Context, partition string, mboxnames, guids []string) ([]string, error) {
	arg := KV(F("PARTITION", Str(partition)), F("MBOXNAME", StrList(mboxnames)), F("GUID", StrList(guids)))
	var missing []string
	err := w.c.do(ctx, "APPLY", "RESERVE", arg, func(k string, v Value) error {
		if k != "MISSING" {
			return nil
		}
		items, err := v.List()
		if err != nil {
			return fmt.Errorf("MISSING: %w", err)
		}
		for _, it := range items {
			g, err := it.GUID()
			if err != nil {
				return fmt.Errorf("MISSING: %w", err)
			}
			missing = append(missing, g)
		}
		return nil
	})
	return missing, err
}

// Message is one message file for APPLY MESSAGE. Body must yield exactly Size bytes.
type Message struct {
	Partition string
	GUID      string
	Size      int64
	Body      io.Reader
}

// Messages adapts a slice to the iterator ApplyMessage takes.
func Messages(ms []Message) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for _, m := range ms {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// ApplyMessage uploads message files as one APPLY MESSAGE, streaming each body from its
// reader into the connection, so memory use is one bounded buffer whatever the number
// and size of messages. It returns how many messages were sent. An error yielded by the
// iterator ends the list early: the messages before it are still sent and the error is
// returned. A body that fails or runs short breaks the connection, because the size was
// already announced. Nothing is sent when the iterator is empty. (sync_client sends
// 1024 files per APPLY MESSAGE; batching is the caller's choice.) The partition must
// exist on the replica: Cyrus 3.6.1 aborts the sync_server process otherwise.
func (w *ReplicaConn) ApplyMessage(ctx context.Context, msgs iter.Seq2[Message, error]) (int, error) {
	c := w.c
	if err := c.begin(ctx, "APPLY MESSAGE"); err != nil {
		return 0, err
	}
	n, iterErr, err := c.writeMessages(msgs)
	if err == nil && n > 0 {
		err = c.readResponse("APPLY MESSAGE", nil)
	}
	if err = c.end(ctx, err); err != nil {
		return n, err
	}
	return n, iterErr
}

func (c *Conn) writeMessages(msgs iter.Seq2[Message, error]) (n int, iterErr, err error) {
	var hdr []byte
	for m, ierr := range msgs {
		if ierr != nil {
			iterErr = ierr
			break
		}
		if hdr, err = appendFileHeader(hdr[:0], m.Partition, m.GUID, m.Size); err != nil {
			iterErr = fmt.Errorf("csync: APPLY MESSAGE: %w", err)
			break
		}
		if n == 0 {
			_, err = c.bw.WriteString("APPLY MESSAGE (")
		} else {
			err = c.bw.WriteByte(' ')
		}
		if err == nil {
			_, err = c.bw.Write(hdr)
		}
		if err != nil {
			return n, nil, fmt.Errorf("csync: write: %w", err)
		}
		copied, cerr := io.CopyN(c.bw, m.Body, m.Size)
		if cerr != nil {
			return n, nil, fmt.Errorf("csync: APPLY MESSAGE %s: body gave %d of %d bytes: %w", m.GUID, copied, m.Size, cerr)
		}
		n++
	}
	if n == 0 {
		return 0, iterErr, nil
	}
	if _, err := c.bw.WriteString(")\r\n"); err != nil {
		return n, iterErr, fmt.Errorf("csync: write: %w", err)
	}
	return n, iterErr, c.flush()
}

// ApplyMailbox creates or updates a mailbox from m (m.Value()).
func (w *ReplicaConn) ApplyMailbox(ctx context.Context, m *Mailbox) error {
	return w.apply(ctx, "MAILBOX", m.Value())
}

// ApplyLocalMailbox is APPLY LOCAL_MAILBOX (skips mupdate in a murder).
func (w *ReplicaConn) ApplyLocalMailbox(ctx context.Context, m *Mailbox) error {
	return w.apply(ctx, "LOCAL_MAILBOX", m.Value())
}

// ApplyMailboxRaw sends a MAILBOX kvlist verbatim, e.g. the Raw of a GET FULLMAILBOX.
func (w *ReplicaConn) ApplyMailboxRaw(ctx context.Context, v Value, isLocal bool) error {
	return w.apply(ctx, local(isLocal, "MAILBOX"), v)
}

// ApplyUnmailbox deletes a mailbox by name (unconditionally, on 3.6.1).
func (w *ReplicaConn) ApplyUnmailbox(ctx context.Context, name string, isLocal bool) error {
	return w.apply(ctx, local(isLocal, "UNMAILBOX"), Str(name))
}

// Rename is the argument of APPLY RENAME; UIDValidity 0 is omitted.
type Rename struct {
	Old, New    string
	Partition   string
	UIDValidity uint32
}

// ApplyRename renames a mailbox (same name, other partition = partition move).
func (w *ReplicaConn) ApplyRename(ctx context.Context, r Rename, isLocal bool) error {
	f := []Field{F("OLDMBOXNAME", Str(r.Old)), F("NEWMBOXNAME", Str(r.New)), F("PARTITION", Str(r.Partition))}
	if r.UIDValidity != 0 {
		f = append(f, F("UIDVALIDITY", Num(uint64(r.UIDValidity))))
	}
	return w.apply(ctx, local(isLocal, "RENAME"), KV(f...))
}

// ApplyExpunge marks UIDs expunged if the mailbox still has that uniqueid
// (ErrMailboxMoved otherwise).
func (w *ReplicaConn) ApplyExpunge(ctx context.Context, mboxname, uniqueid string, uids []uint32) error {
	items := make([]Value, len(uids))
	for i, u := range uids {
		items[i] = Num(uint64(u))
	}
	return w.apply(ctx, "EXPUNGE", KV(F("MBOXNAME", Str(mboxname)), F("UNIQUEID", Str(uniqueid)), F("UID", List(items...))))
}

// ApplyQuota sets a quota root's limits; resources left out become unlimited.
func (w *ReplicaConn) ApplyQuota(ctx context.Context, q *Quota) error {
	return w.apply(ctx, "QUOTA", q.Value())
}

// ApplyUnquota removes a quota root.
func (w *ReplicaConn) ApplyUnquota(ctx context.Context, root string) error {
	return w.apply(ctx, "UNQUOTA", Str(root))
}

// ApplySeen writes userid's seen state for one mailbox uniqueid.
func (w *ReplicaConn) ApplySeen(ctx context.Context, userid string, s *Seen) error {
	return w.apply(ctx, "SEEN", s.value(userid))
}

// ApplySub subscribes userid to mboxname (no existence check on the server).
func (w *ReplicaConn) ApplySub(ctx context.Context, userid, mboxname string) error {
	return w.apply(ctx, "SUB", KV(F("USERID", Str(userid)), F("MBOXNAME", Str(mboxname))))
}

// ApplyUnsub unsubscribes userid from mboxname.
func (w *ReplicaConn) ApplyUnsub(ctx context.Context, userid, mboxname string) error {
	return w.apply(ctx, "UNSUB", KV(F("USERID", Str(userid)), F("MBOXNAME", Str(mboxname))))
}

// ApplyAnnotation stores a mailbox ("" = server) annotation; the replica assigns its
// own modseq.
func (w *ReplicaConn) ApplyAnnotation(ctx context.Context, a *MailboxAnnotation) error {
	return w.apply(ctx, "ANNOTATION", KV(F("MBOXNAME", Str(a.MboxName)), F("ENTRY", Str(a.Entry)),
		F("USERID", Str(a.UserID)), F("VALUE", Str(a.Value))))
}

// ApplyUnannotation clears a mailbox annotation.
func (w *ReplicaConn) ApplyUnannotation(ctx context.Context, mboxname, entry, userid string) error {
	return w.apply(ctx, "UNANNOTATION", KV(F("MBOXNAME", Str(mboxname)), F("ENTRY", Str(entry)), F("USERID", Str(userid))))
}

// ApplySieve stores a sieve script (only *.script names are kept by the server).
func (w *ReplicaConn) ApplySieve(ctx context.Context, s *Sieve) error {
	return w.apply(ctx, "SIEVE", KV(F("USERID", Str(s.UserID)), F("FILENAME", Str(s.Filename)),
		F("LAST_UPDATE", Int(s.LastUpdate)), F("CONTENT", Str(s.Content))))
}

// ApplyUnsieve deletes a sieve script.
func (w *ReplicaConn) ApplyUnsieve(ctx context.Context, userid, filename string) error {
	return w.apply(ctx, "UNSIEVE", KV(F("USERID", Str(userid)), F("FILENAME", Str(filename))))
}

// ApplyActivateSieve makes a script active. On 3.6.1 filename is the compiled
// bytecode's name ("vacation.bc" for "vacation.script"); the .script name gives
// "NO Unknown error".
func (w *ReplicaConn) ApplyActivateSieve(ctx context.Context, userid, filename string) error {
	return w.apply(ctx, "ACTIVATE_SIEVE", KV(F("USERID", Str(userid)), F("FILENAME", Str(filename))))
}

// ApplyUnactivateSieve deactivates the user's active script.
func (w *ReplicaConn) ApplyUnactivateSieve(ctx context.Context, userid string) error {
	return w.apply(ctx, "UNACTIVATE_SIEVE", KV(F("USERID", Str(userid))))
}

// ApplyUnuser deletes a user and all their mailboxes and data on the replica.
func (w *ReplicaConn) ApplyUnuser(ctx context.Context, userid string, isLocal bool) error {
	return w.apply(ctx, local(isLocal, "UNUSER"), Str(userid))
}
