package csync

import (
	"fmt"
	"sort"
	"strings"
)

// Mailbox is the MAILBOX record of GET USER/MAILBOXES/UNIQUEIDS/FULLMAILBOX and the
// argument of APPLY MAILBOX (csync-protocol.md §3.3).
type Mailbox struct {
	UniqueID       string `json:"uniqueid"`
	Name           string `json:"mboxname"`           // internal name, e.g. user.fred.Sent
	Type           string `json:"mboxtype,omitempty"` // MBOXTYPE letters; "" = plain email
	SyncCRC        uint32 `json:"sync_crc"`
	SyncCRCAnnot   uint32 `json:"sync_crc_annot"`
	LastUID        uint32 `json:"last_uid"`
	HighestModSeq  uint64 `json:"highestmodseq"`
	RecentUID      uint32 `json:"recentuid"`
	RecentTime     int64  `json:"recenttime"`
	LastAppendDate int64  `json:"last_appenddate"`
	POP3LastLogin  int64  `json:"pop3_last_login"`
	POP3ShowAfter  int64  `json:"pop3_show_after"`
	XConvModSeq    uint64 `json:"xconvmodseq,omitempty"`
	RACLModSeq     uint64 `json:"raclmodseq,omitempty"`
	UIDValidity    uint32 `json:"uidvalidity"`
	Partition      string `json:"partition"`
	ACL            string `json:"acl"`
	Options        string `json:"options"`
	QuotaRoot      string `json:"quotaroot,omitempty"`
	CreatedModSeq  uint64 `json:"createdmodseq,omitempty"`
	FolderModSeq   uint64 `json:"foldermodseq,omitempty"`
	// Annotations are the mailbox-level annotations. On APPLY an empty list removes
	// the replica's mailbox annotations.
	Annotations []Annotation `json:"annotations,omitempty"`
	// Since carries the SINCE_* compare-and-set fields (client → server only).
	Since *Since `json:"since,omitempty"`
	// Records are the RECORD entries (GET FULLMAILBOX only), in ascending UID order.
	Records    []Record `json:"records,omitempty"`
	HasRecords bool     `json:"-"` // the RECORD field was present
	// Raw is the kvlist as received, for verbatim replay (APPLY MAILBOX of a
	// GET FULLMAILBOX reply works unchanged).
	Raw Value `json:"-"`
}

// Since is the replica state the client expects (§3.4 step 4); 0 CRCs are wildcards.
type Since struct {
	ModSeq   uint64 `json:"modseq"`
	CRC      uint32 `json:"crc"`
	CRCAnnot uint32 `json:"crc_annot"`
}

// Record is one RECORD entry of a MAILBOX (§3.3.1).
type Record struct {
	UID          uint32       `json:"uid"`
	ModSeq       uint64       `json:"modseq"`
	LastUpdated  int64        `json:"last_updated"`
	Flags        []string     `json:"flags"` // `\Seen` system flags and user keywords
	InternalDate int64        `json:"internaldate"`
	Size         uint32       `json:"size"`
	GUID         string       `json:"guid"`
	Annotations  []Annotation `json:"annotations,omitempty"`
}

// Expunged reports whether the record carries the internal \Expunged flag.
func (r *Record) Expunged() bool {
	for _, f := range r.Flags {
		if strings.EqualFold(f, `\Expunged`) {
			return true
		}
	}
	return false
}

// Annotation is one %(ENTRY USERID MODSEQ VALUE) entry of a record or mailbox.
type Annotation struct {
	Entry  string `json:"entry"`
	UserID string `json:"userid"` // "" = shared
	ModSeq uint64 `json:"modseq"`
	Value  string `json:"value"`
}

// IsTombstoneOrIntermediate reports whether MBOXTYPE marks a tombstone (d) or an
// intermediate (i); APPLY MAILBOX then carries only the minimal fields.
func (m *Mailbox) IsTombstoneOrIntermediate() bool {
	return strings.ContainsAny(m.Type, "di")
}

// ParseMailbox converts a MAILBOX kvlist.
func ParseMailbox(v Value) (*Mailbox, error) {
	r := newKV(v, "MAILBOX")
	m := &Mailbox{Raw: v}
	m.UniqueID = r.str("UNIQUEID", true)
	m.Name = r.str("MBOXNAME", true)
	m.Type = r.str("MBOXTYPE", false)
	m.SyncCRC = r.num("SYNC_CRC", false)
	m.SyncCRCAnnot = r.num("SYNC_CRC_ANNOT", false)
	m.LastUID = r.num("LAST_UID", false)
	m.HighestModSeq = r.num64("HIGHESTMODSEQ", false)
	m.RecentUID = r.num("RECENTUID", false)
	m.RecentTime = r.date("RECENTTIME", false)
	m.LastAppendDate = r.date("LAST_APPENDDATE", false)
	m.POP3LastLogin = r.date("POP3_LAST_LOGIN", false)
	m.POP3ShowAfter = r.date("POP3_SHOW_AFTER", false)
	m.XConvModSeq = r.num64("XCONVMODSEQ", false)
	m.RACLModSeq = r.num64("RACLMODSEQ", false)
	m.UIDValidity = r.num("UIDVALIDITY", false)
	m.Partition = r.str("PARTITION", false)
	m.ACL = r.str("ACL", false)
	m.Options = r.str("OPTIONS", false)
	m.QuotaRoot = r.str("QUOTAROOT", false)
	m.CreatedModSeq = r.num64("CREATEDMODSEQ", false)
	m.FolderModSeq = r.num64("FOLDERMODSEQ", false)
	if items, ok := r.list("ANNOTATIONS", false); ok {
		m.Annotations = parseAnnotations(r, "ANNOTATIONS", items)
	}
	if r.has("SINCE_MODSEQ") || r.has("SINCE_CRC") || r.has("SINCE_CRC_ANNOT") {
		m.Since = &Since{
			ModSeq:   r.num64("SINCE_MODSEQ", false),
			CRC:      r.num("SINCE_CRC", false),
			CRCAnnot: r.num("SINCE_CRC_ANNOT", false),
		}
	}
	if items, ok := r.list("RECORD", false); ok {
		m.HasRecords = true
		m.Records = make([]Record, 0, len(items))
		for _, it := range items {
			rec, err := parseRecord(it)
			if err != nil {
				r.fail("RECORD", err)
				break
			}
			m.Records = append(m.Records, rec)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

func parseAnnotations(r *kvReader, key string, items []Value) []Annotation {
	out := make([]Annotation, 0, len(items))
	for _, it := range items {
		ar := newKV(it, "annotation")
		a := Annotation{
			Entry:  ar.str("ENTRY", true),
			UserID: ar.str("USERID", false),
			ModSeq: ar.num64("MODSEQ", false),
			Value:  ar.str("VALUE", false),
		}
		if ar.err != nil {
			r.fail(key, ar.err)
			return nil
		}
		out = append(out, a)
	}
	return out
}

func parseRecord(v Value) (Record, error) {
	r := newKV(v, "RECORD")
	rec := Record{
		UID:          r.num("UID", true),
		ModSeq:       r.num64("MODSEQ", true),
		LastUpdated:  r.date("LAST_UPDATED", true),
		InternalDate: r.date("INTERNALDATE", true),
		Size:         r.num("SIZE", true),
		GUID:         r.guid("GUID", true),
	}
	if items, ok := r.list("FLAGS", true); ok {
		rec.Flags = make([]string, 0, len(items))
		for _, it := range items {
			if it.Kind != KindFlag && it.Kind != KindString {
				r.fail("FLAGS", typeErr("flag", it))
				break
			}
			rec.Flags = append(rec.Flags, it.S)
		}
	}
	if items, ok := r.list("ANNOTATIONS", false); ok {
		rec.Annotations = parseAnnotations(r, "ANNOTATIONS", items)
	}
	return rec, r.err
}

// Value encodes the mailbox as the APPLY MAILBOX kvlist, in the server's field order.
// Tombstones and intermediates carry only the fields the server reads for them.
func (m *Mailbox) Value() Value {
	f := []Field{F("UNIQUEID", Str(m.UniqueID)), F("MBOXNAME", Str(m.Name))}
	if m.Type != "" {
		f = append(f, F("MBOXTYPE", Str(m.Type)))
	}
	if m.IsTombstoneOrIntermediate() {
		f = append(f, F("HIGHESTMODSEQ", Num(m.HighestModSeq)))
		if m.CreatedModSeq != 0 {
			f = append(f, F("CREATEDMODSEQ", Num(m.CreatedModSeq)))
		}
		return KV(f...)
	}
	f = append(f,
		F("SYNC_CRC", Num(uint64(m.SyncCRC))),
		F("SYNC_CRC_ANNOT", Num(uint64(m.SyncCRCAnnot))),
		F("LAST_UID", Num(uint64(m.LastUID))),
		F("HIGHESTMODSEQ", Num(m.HighestModSeq)),
		F("RECENTUID", Num(uint64(m.RecentUID))),
		F("RECENTTIME", Int(m.RecentTime)),
		F("LAST_APPENDDATE", Int(m.LastAppendDate)),
		F("POP3_LAST_LOGIN", Int(m.POP3LastLogin)),
		F("POP3_SHOW_AFTER", Int(m.POP3ShowAfter)),
	)
	if m.XConvModSeq != 0 {
		f = append(f, F("XCONVMODSEQ", Num(m.XConvModSeq)))
	}
	if m.RACLModSeq != 0 {
		f = append(f, F("RACLMODSEQ", Num(m.RACLModSeq)))
	}
	f = append(f,
		F("UIDVALIDITY", Num(uint64(m.UIDValidity))),
		F("PARTITION", Str(m.Partition)),
		F("ACL", Str(m.ACL)),
		F("OPTIONS", Str(m.Options)),
	)
	if m.QuotaRoot != "" {
		f = append(f, F("QUOTAROOT", Str(m.QuotaRoot)))
	}
	if m.CreatedModSeq != 0 {
		f = append(f, F("CREATEDMODSEQ", Num(m.CreatedModSeq)))
	}
	if m.FolderModSeq != 0 {
		f = append(f, F("FOLDERMODSEQ", Num(m.FolderModSeq)))
	}
	if len(m.Annotations) > 0 {
		f = append(f, F("ANNOTATIONS", annotationsValue(m.Annotations)))
	}
	if m.Since != nil {
		f = append(f,
			F("SINCE_MODSEQ", Num(m.Since.ModSeq)),
			F("SINCE_CRC", Num(uint64(m.Since.CRC))),
			F("SINCE_CRC_ANNOT", Num(uint64(m.Since.CRCAnnot))),
		)
	}
	recs := make([]Value, len(m.Records))
	for i := range m.Records {
		recs[i] = m.Records[i].Value()
	}
	f = append(f, F("RECORD", List(recs...)))
	return KV(f...)
}

func annotationsValue(as []Annotation) Value {
	items := make([]Value, len(as))
	for i, a := range as {
		items[i] = KV(F("ENTRY", Str(a.Entry)), F("USERID", Str(a.UserID)),
			F("MODSEQ", Num(a.ModSeq)), F("VALUE", Str(a.Value)))
	}
	return List(items...)
}

// Value encodes the record as a RECORD kvlist.
func (r *Record) Value() Value {
	flags := make([]Value, len(r.Flags))
	for i, fl := range r.Flags {
		if strings.HasPrefix(fl, `\`) {
			flags[i] = Flag(fl)
		} else {
			flags[i] = Str(fl)
		}
	}
	f := []Field{
		F("UID", Num(uint64(r.UID))),
		F("MODSEQ", Num(r.ModSeq)),
		F("LAST_UPDATED", Int(r.LastUpdated)),
		F("FLAGS", List(flags...)),
		F("INTERNALDATE", Int(r.InternalDate)),
		F("SIZE", Num(uint64(r.Size))),
		F("GUID", Str(r.GUID)),
	}
	if len(r.Annotations) > 0 {
		f = append(f, F("ANNOTATIONS", annotationsValue(r.Annotations)))
	}
	return KV(f...)
}

// Quota is a QUOTA record. Resources maps the wire names (LIMIT, STORAGE, MESSAGE,
// X-ANNOTATION-STORAGE, X-NUM-FOLDERS) to limits; a missing resource is unlimited.
type Quota struct {
	Root      string            `json:"root"`
	Resources map[string]uint64 `json:"resources"`
	ModSeq    uint64            `json:"modseq,omitempty"`
	HasModSeq bool              `json:"-"`
}

// quotaOrder is the order the server prints quota resources in.
var quotaOrder = []string{"LIMIT", "STORAGE", "MESSAGE", "X-ANNOTATION-STORAGE", "X-NUM-FOLDERS"}

// ParseQuota converts a QUOTA kvlist.
func ParseQuota(v Value) (*Quota, error) {
	r := newKV(v, "QUOTA")
	q := &Quota{Root: r.str("ROOT", true), Resources: map[string]uint64{}}
	if r.err != nil {
		return nil, r.err
	}
	for _, fl := range v.Fields {
		switch fl.Key {
		case "ROOT":
		case "MODSEQ":
			q.ModSeq, q.HasModSeq = r.num64("MODSEQ", true), true
		default:
			n, err := fl.Value.Num64()
			if err != nil {
				return nil, fmt.Errorf("QUOTA field %s: %w", fl.Key, err)
			}
			q.Resources[fl.Key] = n
		}
	}
	return q, r.err
}

// Value encodes the quota as the APPLY QUOTA kvlist.
func (q *Quota) Value() Value {
	f := []Field{F("ROOT", Str(q.Root))}
	seen := map[string]bool{}
	for _, k := range quotaOrder {
		if n, ok := q.Resources[k]; ok {
			f = append(f, F(k, Num(n)))
			seen[k] = true
		}
	}
	var extra []string
	for k := range q.Resources {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		f = append(f, F(k, Num(q.Resources[k])))
	}
	if q.HasModSeq || q.ModSeq != 0 {
		f = append(f, F("MODSEQ", Num(q.ModSeq)))
	}
	return KV(f...)
}

// Seen is a SEEN record: one user's seen state for one mailbox uniqueid.
type Seen struct {
	UniqueID   string `json:"uniqueid"`
	LastRead   int64  `json:"lastread"`
	LastUID    uint32 `json:"lastuid"`
	LastChange int64  `json:"lastchange"`
	SeenUIDs   string `json:"seenuids"` // IMAP sequence set
}

// ParseSeen converts a SEEN kvlist.
func ParseSeen(v Value) (*Seen, error) {
	r := newKV(v, "SEEN")
	s := &Seen{
		UniqueID:   r.str("UNIQUEID", true),
		LastRead:   r.date("LASTREAD", false),
		LastUID:    r.num("LASTUID", false),
		LastChange: r.date("LASTCHANGE", false),
		SeenUIDs:   r.str("SEENUIDS", false),
	}
	return s, r.err
}

func (s *Seen) value(userid string) Value {
	return KV(F("USERID", Str(userid)), F("UNIQUEID", Str(s.UniqueID)),
		F("LASTREAD", Int(s.LastRead)), F("LASTUID", Num(uint64(s.LastUID))),
		F("LASTCHANGE", Int(s.LastChange)), F("SEENUIDS", Str(s.SeenUIDs)))
}

// Sieve is a SIEVE record (GET USER/META without SIEVE-MAILBOX, GET FETCH_SIEVE) or
// the argument of APPLY SIEVE.
type Sieve struct {
	UserID     string `json:"userid,omitempty"`
	Filename   string `json:"filename"`
	LastUpdate int64  `json:"last_update,omitempty"`
	GUID       string `json:"guid,omitempty"`
	Active     bool   `json:"active,omitempty"`
	Content    string `json:"content,omitempty"` // FETCH_SIEVE / APPLY SIEVE only
}

// ParseSieve converts a SIEVE kvlist.
func ParseSieve(v Value) (*Sieve, error) {
	r := newKV(v, "SIEVE")
	s := &Sieve{
		UserID:     r.str("USERID", false),
		Filename:   r.str("FILENAME", true),
		LastUpdate: r.date("LAST_UPDATE", false),
		GUID:       r.str("GUID", false),
		Active:     r.num("ISACTIVE", false) != 0,
		Content:    r.str("CONTENT", false),
	}
	return s, r.err
}

// MailboxAnnotation is an ANNOTATION record (GET/APPLY ANNOTATION): a mailbox-level or,
// with MboxName "", a server annotation.
type MailboxAnnotation struct {
	MboxName string `json:"mboxname"`
	Entry    string `json:"entry"`
	UserID   string `json:"userid"`
	ModSeq   uint64 `json:"modseq,omitempty"`
	Value    string `json:"value"`
}

// ParseMailboxAnnotation converts an ANNOTATION kvlist.
func ParseMailboxAnnotation(v Value) (*MailboxAnnotation, error) {
	r := newKV(v, "ANNOTATION")
	a := &MailboxAnnotation{
		MboxName: r.str("MBOXNAME", true),
		Entry:    r.str("ENTRY", true),
		UserID:   r.str("USERID", false),
		ModSeq:   r.num64("MODSEQ", false),
		Value:    r.str("VALUE", false),
	}
	return a, r.err
}

// Data is one untagged "* KEY value" line of a reply.
type Data struct {
	Key   string
	Value Value
}

// UserState is the GET USER reply.
type UserState struct {
	Mailboxes     []Mailbox `json:"mailboxes"`
	Quotas        []Quota   `json:"quotas"`
	Seen          []Seen    `json:"seen"`
	Subscriptions []string  `json:"subscriptions"` // LSUB: internal mailbox names
	Sieve         []Sieve   `json:"sieve"`
	Other         []Data    `json:"-"` // data lines of unknown keys
}

// Meta is the GET META reply.
type Meta struct {
	Seen          []Seen   `json:"seen"`
	Subscriptions []string `json:"subscriptions"`
	Sieve         []Sieve  `json:"sieve"`
	Other         []Data   `json:"-"`
}
