package mboxdb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// Reader reads the master's mailboxes.db one batch's users at a time: memory
// and time follow the batch, not the server's folder count, and every batch sees the
// tombstones as they are when it starts. It reads with the Go twoskip reader, which
// finds each batch's records through the skip list (a few milliseconds on a server of
// thousands of users), or, when asked, with Cyrus's own cyr_dbtool (a process per
// read). Either way it only looks records up (SHOW and GET), outside any transaction,
// so it never holds a lock the master's writers wait for.
type Reader struct {
	Bin    string // Cyrus's tools directory (DefaultCyrusBin when "")
	Config string // the master's imapd.conf
	DB     string // its mailboxes.db
	// Backend is BackendGo (NewReader's choice) or BackendCyrDBTool (UseCyrDBTool).
	Backend string
}

// The ways Reader reads mailboxes.db.
const (
	BackendCyrDBTool = "cyr_dbtool" // Cyrus's tool, `cyr_dbtool … twoskip batch`
	BackendGo        = "go"         // internal/twoskip, no Cyrus tools needed
)

// NewReader locates mailboxes.db through the imapd.conf's configdirectory and reads it
// with the Go twoskip reader; cyrusBin is where UseCyrDBTool looks for cyr_dbtool.
func NewReader(cyrusBin, imapdConf string) (*Reader, error) {
	if cyrusBin == "" {
		cyrusBin = DefaultCyrusBin
	}
	conf, err := filepath.Abs(imapdConf)
	if err != nil {
		return nil, err
	}
	dir, err := ConfigDirectory(conf)
	if err != nil {
		return nil, err
	}
	return &Reader{Bin: cyrusBin, Config: conf, DB: filepath.Join(dir, "mailboxes.db"), Backend: BackendGo}, nil
}

// UseCyrDBTool makes r read with Cyrus's cyr_dbtool from its Bin, which must hold it.
// Each read then starts a process (tens of milliseconds, counted as the caller's CPU).
func (r *Reader) UseCyrDBTool() error {
	tool := filepath.Join(r.Bin, "cyr_dbtool")
	st, err := os.Stat(tool)
	if err != nil {
		return fmt.Errorf("mailboxes.db reader cyr_dbtool: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("mailboxes.db reader cyr_dbtool: %s is not an executable file", tool)
	}
	r.Backend = BackendCyrDBTool
	return nil
}

// ForUsers returns the evidence for the users' folders: their N records (INBOX tree and
// DELETED.* tree), the I records (name history) of uids, and the N record wherever such
// an I record says the folder lives now. Tombstones are only reported for uids: a
// uniqueid whose I record was not read could live on under another user. One
// cyr_dbtool run, two when a folder moved to a user outside the batch.
func (r *Reader) ForUsers(ctx context.Context, users, uids []string) (*DB, error) {
	var cmds []string
	for _, u := range users {
		root := mboxname.InternalToDBName(mboxname.UserRoot(u))
		deleted := mboxname.InternalToDBName(mboxname.DeletedRoot(u))
		cmds = append(cmds, "GET N"+root, "SHOW N"+root+"\x1f", "SHOW N"+deleted+"\x1f")
	}
	asked := map[string]bool{}
	for _, uid := range uids {
		if uid != "" && !asked[uid] {
			asked[uid] = true
			cmds = append(cmds, "GET I"+uid)
		}
	}
	recs, err := r.batch(ctx, cmds)
	if err != nil {
		return nil, err
	}
	// Where an I record says a folder lives now, outside these users: read that name's N
	// record too, so a folder renamed to another user is seen live, not deleted.
	have := map[string]bool{}
	for _, rec := range recs {
		have[rec.key] = true
	}
	cmds = cmds[:0]
	for _, rec := range recs {
		if !strings.HasPrefix(rec.key, "I") {
			continue
		}
		kv, err := parseKVList(rec.val)
		if err != nil {
			continue // recorded as Bad by build
		}
		if n := kv.str("N"); n != "" && !have["N"+n] {
			have["N"+n] = true
			cmds = append(cmds, "GET N"+n)
		}
	}
	more, err := r.batch(ctx, cmds)
	if err != nil {
		return nil, err
	}
	db := build(append(recs, more...))
	maps.DeleteFunc(db.Tombstones, func(uid string, _ Tombstone) bool { return !asked[uid] })
	return db, nil
}

// Users lists the users owning live folders, streaming the N records so that only the
// user names are held.
func (r *Reader) Users(ctx context.Context) ([]string, error) {
	set := map[string]bool{}
	restart := func() { clear(set) }
	err := r.run(ctx, []string{"SHOW N"}, restart, func(rec dbRecord) {
		if kv, err := parseKVList(rec.val); err == nil && !strings.ContainsRune(kv.str("T"), 'd') {
			if u := mboxname.UserOf(mboxname.DBNameToInternal(rec.key[1:])); u != "" {
				set[u] = true
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return sortedKeys(set), nil
}

func (r *Reader) batch(ctx context.Context, cmds []string) ([]dbRecord, error) {
	var recs []dbRecord
	if len(cmds) == 0 {
		return nil, nil
	}
	restart := func() { recs = recs[:0] }
	err := r.run(ctx, cmds, restart, func(rec dbRecord) { recs = append(recs, rec) })
	return recs, err
}

// run answers cmds ("SHOW <prefix>" or "GET <key>") in order with the reader's backend
// and hands every record to fn. The Go backend may start over when it catches the
// file mid-change: restart is called first, and fn sees the records again.
func (r *Reader) run(ctx context.Context, cmds []string, restart func(), fn func(dbRecord)) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	switch r.Backend {
	case BackendGo:
		return r.runGo(ctx, cmds, restart, fn)
	case BackendCyrDBTool, "":
		return r.runDBTool(ctx, cmds, fn)
	default:
		return fmt.Errorf("mailboxes.db: unknown backend %q", r.Backend)
	}
}

// runDBTool feeds cmds to `cyr_dbtool … batch` and hands every record printed to fn.
func (r *Reader) runDBTool(ctx context.Context, cmds []string, fn func(dbRecord)) error {
	var in bytes.Buffer
	for _, c := range cmds {
		verb, key, _ := strings.Cut(c, " ")
		if verb != "SHOW" && verb != "GET" {
			return fmt.Errorf("mailboxes.db: refusing %q: only SHOW and GET are sent", verb)
		}
		if strings.ContainsAny(key, "\r\n\x00") {
			return fmt.Errorf("mailboxes.db: key %q cannot be sent to cyr_dbtool", key)
		}
		// A quoted string (3.6.1's cyr_dbtool crashes on literals in batch mode).
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key)
		fmt.Fprintf(&in, "%s \"%s\"\n", verb, q)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(r.Bin, "cyr_dbtool"), "-C", r.Config, r.DB, "twoskip", "batch")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cyr_dbtool: %w", err)
	}
	perr := readDBToolRecords(bufio.NewReaderSize(out, 64<<10), fn)
	if perr != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	switch {
	case werr != nil:
		return fmt.Errorf("cyr_dbtool batch %s: %w: %s", r.DB, werr, strings.TrimSpace(stderr.String()))
	case strings.Contains(stderr.String(), "FAILED"):
		// batch mode reports a failed command on stderr and still exits 0.
		return fmt.Errorf("cyr_dbtool batch %s: %s", r.DB, strings.TrimSpace(stderr.String()))
	case perr != nil:
		return fmt.Errorf("cyr_dbtool batch %s: %w", r.DB, perr)
	}
	return nil
}

// readDBToolRecords parses batch-mode output: per record, key SP value LF, each an IMAP
// astring (atom, "quoted" without escapes, {N} CRLF literal, or NIL).
func readDBToolRecords(br *bufio.Reader, fn func(dbRecord)) error {
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			return nil
		}
		key, err := readAString(br)
		if err != nil {
			return fmt.Errorf("record key: %w", err)
		}
		if c, err := br.ReadByte(); err != nil || c != ' ' {
			return fmt.Errorf("record %q: no space after the key", key)
		}
		val, err := readAString(br)
		if err != nil {
			return fmt.Errorf("record %q value: %w", key, err)
		}
		if c, err := br.ReadByte(); err != nil || c != '\n' {
			return fmt.Errorf("record %q: no newline after the value", key)
		}
		fn(dbRecord{key: key, val: val})
	}
}

// maxDBToolString bounds one key or value (a mailboxes.db record is a few KB at most).
const maxDBToolString = 16 << 20

func readAString(br *bufio.Reader) (string, error) {
	c, err := br.ReadByte()
	if err != nil {
		return "", io.ErrUnexpectedEOF
	}
	switch c {
	case '"':
		s, err := br.ReadString('"')
		if err != nil {
			return "", errors.New("unterminated quoted string")
		}
		return s[:len(s)-1], nil
	case '{':
		n, err := br.ReadString('}')
		if err != nil {
			return "", errors.New("bad literal")
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n[:len(n)-1], "+"))
		if err != nil || size < 0 || size > maxDBToolString {
			return "", fmt.Errorf("bad literal size %q", n)
		}
		var crlf [2]byte
		if _, err := io.ReadFull(br, crlf[:]); err != nil || string(crlf[:]) != "\r\n" {
			return "", errors.New("literal size not followed by CRLF")
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", fmt.Errorf("literal cut short: %w", io.ErrUnexpectedEOF)
		}
		return string(b), nil
	default:
		var b strings.Builder
		b.WriteByte(c)
		for {
			p, err := br.Peek(1)
			if err != nil || p[0] == ' ' || p[0] == '\n' {
				break
			}
			if b.Len() >= maxDBToolString {
				return "", errors.New("atom too long")
			}
			b.WriteByte(p[0])
			_, _ = br.ReadByte()
		}
		if s := b.String(); s != "NIL" {
			return s, nil
		}
		return "", nil
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return slices.Clip(out)
}
