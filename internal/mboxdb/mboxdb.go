package mboxdb

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// DB is the evidence read from the master's mailboxes.db (§6): which uniqueids
// are live where, tombstones, and name history.
type DB struct {
	Live       map[string]string    // uniqueid → internal name of its live N record
	Tombstones map[string]Tombstone // uniqueids with no live folder anywhere on the master
	History    map[string][]string  // uniqueid → former internal names, newest first
	Bad        []string             // records that could not be parsed (skipped)
}

// Tombstone is what the master's mailboxes.db says about a uniqueid that is no longer a
// live folder: an N record of type "…d" (a real tombstone), or an orphaned I record
// whose name no longer exists (a purged DELETED.* folder, Cyrus 3.6.1 §6.2).
type Tombstone struct {
	UniqueID string
	Name     string // internal name the tombstone or orphan record is at
	Orphan   bool   // true: I record without a live N record; false: an N tombstone
	MTime    int64
}

// DefaultCyrusBin is where Debian installs Cyrus's tools.
const DefaultCyrusBin = "/usr/lib/cyrus/bin"

// ConfigDirectory returns the configdirectory setting of an imapd.conf.
func ConfigDirectory(imapdConf string) (string, error) {
	s, err := mboxname.ReadMasterSettings(imapdConf)
	if err != nil {
		return "", err
	}
	return s.ConfigDirectory, nil
}

type mbRecord struct {
	name string // N records: internal name; I records: the N field
	uid  string
	typ  string
	mtim int64
	hist []string
}

// Parse parses a `cyr_dbtool … twoskip show` dump: one record per line,
// key TAB value, keys N<dbname> and I<uniqueid>, values dlist kvlists.
func Parse(dump []byte) *DB {
	var recs []dbRecord
	for _, line := range bytes.Split(dump, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte{'\t'})
		if !ok {
			continue
		}
		recs = append(recs, dbRecord{key: string(key), val: string(val)})
	}
	return build(recs)
}

// dbRecord is one mailboxes.db record as cyr_dbtool prints it.
type dbRecord struct{ key, val string }

// build turns records into evidence. The records may be a subset of the
// database (one batch's users) as long as, for every uniqueid whose I record is there,
// the N record at the I record's current name is there too, if it exists: otherwise a
// folder renamed out of the subset would look deleted.
func build(recs []dbRecord) *DB {
	db := &DB{Live: map[string]string{}, Tombstones: map[string]Tombstone{}, History: map[string][]string{}}
	var ns, is []mbRecord
	for _, rec := range recs {
		key, val := rec.key, rec.val
		if len(key) < 2 || (key[0] != 'N' && key[0] != 'I') {
			continue // version key, reverse-ACL records, …
		}
		kv, err := parseKVList(val)
		if err != nil {
			db.Bad = append(db.Bad, fmt.Sprintf("%q: %v", key, err))
			continue
		}
		r := mbRecord{typ: kv.str("T"), mtim: kv.num("M")}
		if key[0] == 'N' {
			r.name, r.uid = mboxname.DBNameToInternal(string(key[1:])), kv.str("I")
			ns = append(ns, r)
			continue
		}
		r.uid, r.name = string(key[1:]), mboxname.DBNameToInternal(kv.str("N"))
		for _, h := range kv.list("H") {
			if n := h.str("N"); n != "" {
				r.hist = append(r.hist, mboxname.DBNameToInternal(n))
			}
		}
		is = append(is, r)
	}
	liveAt := map[string]string{} // name → uid of live N records
	for _, r := range ns {
		if r.uid != "" && !strings.ContainsRune(r.typ, 'd') {
			db.Live[r.uid] = r.name
			liveAt[r.name] = r.uid
		}
	}
	for _, r := range ns {
		if r.uid == "" || !strings.ContainsRune(r.typ, 'd') {
			continue
		}
		if _, live := db.Live[r.uid]; live {
			continue // renamed away: the old name's tombstone, not a deletion
		}
		if t, ok := db.Tombstones[r.uid]; !ok || r.mtim > t.MTime {
			db.Tombstones[r.uid] = Tombstone{UniqueID: r.uid, Name: r.name, MTime: r.mtim}
		}
	}
	for _, r := range is {
		if len(r.hist) > 0 {
			db.History[r.uid] = r.hist
		}
		if _, live := db.Live[r.uid]; live {
			continue
		}
		if _, ok := db.Tombstones[r.uid]; ok {
			continue
		}
		// An I record for a uniqueid with no live N record: deleted (type d) or an
		// orphan left when a DELETED.* folder was purged (3.6.1, §6.2).
		if liveAt[r.name] != r.uid {
			db.Tombstones[r.uid] = Tombstone{UniqueID: r.uid, Name: r.name, Orphan: !strings.ContainsRune(r.typ, 'd'), MTime: r.mtim}
		}
	}
	return db
}

// kv is a parsed dlist kvlist (values: string, []any for lists, kv for nested kvlists).
type kv map[string]any

func (k kv) str(key string) string { s, _ := k[key].(string); return s }

func (k kv) num(key string) int64 {
	n, _ := strconv.ParseInt(k.str(key), 10, 64)
	return n
}

func (k kv) list(key string) []kv {
	items, _ := k[key].([]any)
	var out []kv
	for _, it := range items {
		if m, ok := it.(kv); ok {
			out = append(out, m)
		}
	}
	return out
}

// parseKVList parses the small dlist subset mailboxes.db values use: %( key value … ),
// ( … ), atoms, "quoted" strings with backslash escapes, {N} literals, NIL.
func parseKVList(s string) (kv, error) {
	p := &dlp{s: s}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	m, ok := v.(kv)
	if !ok {
		return nil, errors.New("value is not a kvlist")
	}
	return m, nil
}

// errShortValue means a value ended before it was complete.
var errShortValue = errors.New("unexpected end of input")

type dlp struct {
	s string
	i int
}

func (p *dlp) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\r' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *dlp) value() (any, error) {
	p.skip()
	if p.i >= len(p.s) {
		return nil, errShortValue
	}
	switch {
	case strings.HasPrefix(p.s[p.i:], "%("):
		p.i += 2
		m := kv{}
		for {
			p.skip()
			if p.i >= len(p.s) {
				return nil, errShortValue
			}
			if p.s[p.i] == ')' {
				p.i++
				return m, nil
			}
			k, err := p.atom()
			if err != nil {
				return nil, err
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
	case p.s[p.i] == '(':
		p.i++
		var items []any
		for {
			p.skip()
			if p.i >= len(p.s) {
				return nil, errShortValue
			}
			if p.s[p.i] == ')' {
				p.i++
				return items, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
	case p.s[p.i] == '"':
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			c := p.s[p.i]
			if c == '\\' && p.i+1 < len(p.s) {
				p.i++
				b.WriteByte(p.s[p.i])
				continue
			}
			if c == '"' {
				p.i++
				return b.String(), nil
			}
			b.WriteByte(c)
		}
		return nil, errShortValue
	case p.s[p.i] == '{':
		end := strings.IndexByte(p.s[p.i:], '}')
		if end < 0 {
			return nil, errShortValue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(p.s[p.i+1:p.i+end], "+"))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad literal size")
		}
		p.i += end + 1
		if p.i < len(p.s) && p.s[p.i] == '\r' {
			p.i++
		}
		if p.i < len(p.s) && p.s[p.i] == '\n' {
			p.i++
		}
		if p.i+n > len(p.s) {
			return nil, errShortValue
		}
		v := p.s[p.i : p.i+n]
		p.i += n
		return v, nil
	}
	a, err := p.atom()
	if err != nil {
		return nil, err
	}
	if a == "NIL" {
		return "", nil
	}
	return a, nil
}

func (p *dlp) atom() (string, error) {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(" ()\"\r\n", rune(p.s[p.i])) {
		p.i++
	}
	if p.i == start {
		return "", fmt.Errorf("expected atom at offset %d", start)
	}
	return p.s[start:p.i], nil
}
