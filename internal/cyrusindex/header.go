package cyrusindex

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// headerMagic opens every cyrus.header (MAILBOX_HEADER_MAGIC).
const headerMagic = "\xa1\x02\x8b\x0dCyrus mailbox header\n" +
	"\"The best thing about this system was that it had lots of goals.\"\n" +
	"\t--Jim Morris on Andrew\n"

// MailboxHeader is cyrus.header: the mailbox's identity, ACL and user flag names.
type MailboxHeader struct {
	Type      string // T: MBOXTYPE letters ("e" for email)
	Name      string // N: internal name
	UniqueID  string // I
	QuotaRoot string // Q
	ACL       string // A, as Cyrus's ACL string: "id<TAB>rights<TAB>…"
	// UserFlags are the user flag names by slot ("" for a free slot).
	UserFlags []string
	CRC       uint32 // CRC32 of the whole file, to compare with Header.HeaderFileCRC
}

// ParseMailboxHeader decodes cyrus.header in Cyrus 3.6's dlist form.
func ParseMailboxHeader(b []byte) (MailboxHeader, error) {
	h := MailboxHeader{CRC: crc32.ChecksumIEEE(b)}
	if !bytes.HasPrefix(b, []byte(headerMagic)) {
		return h, formatErr("cyrus.header: bad magic")
	}
	rest := b[len(headerMagic):]
	if len(rest) == 0 || rest[0] != '%' {
		return h, fmt.Errorf("%w: cyrus.header without a dlist (a pre-3.6 header)", ErrVersion)
	}
	p := dlistParser{b: rest}
	v, err := p.value(0)
	if err != nil {
		return h, formatErr("cyrus.header: %v", err)
	}
	if v.kv == nil {
		return h, formatErr("cyrus.header: not a kvlist")
	}
	for _, kv := range v.kv {
		switch kv.key {
		case "T":
			h.Type = kv.val.str
		case "N":
			h.Name = kv.val.str
		case "I":
			h.UniqueID = kv.val.str
		case "Q":
			h.QuotaRoot = kv.val.str
		case "A":
			var acl strings.Builder
			for _, e := range kv.val.kv {
				acl.WriteString(e.key + "\t" + e.val.str + "\t")
			}
			h.ACL = acl.String()
		case "U":
			if len(kv.val.list) > maxUserFlags {
				return h, formatErr("cyrus.header: %d user flags, at most %d", len(kv.val.list), maxUserFlags)
			}
			for _, f := range kv.val.list {
				h.UserFlags = append(h.UserFlags, f.str)
			}
		}
	}
	if h.UniqueID == "" {
		return h, formatErr("cyrus.header: no uniqueid")
	}
	return h, nil
}

// dvalue is a parsed dlist value: a string (NIL is ""), a list, or a kvlist.
type dvalue struct {
	str  string
	list []dvalue
	kv   []dkv
}

type dkv struct {
	key string
	val dvalue
}

// dlistParser reads the dlist subset cyrus.header uses: atoms, quoted strings,
// literals, NIL, lists and kvlists.
type dlistParser struct {
	b   []byte
	pos int
}

const maxDepth = 8

func (p *dlistParser) skipSpace() {
	for p.pos < len(p.b) && (p.b[p.pos] == ' ' || p.b[p.pos] == '\t' || p.b[p.pos] == '\r' || p.b[p.pos] == '\n') {
		p.pos++
	}
}

func (p *dlistParser) value(depth int) (dvalue, error) {
	if depth > maxDepth {
		return dvalue{}, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	p.skipSpace()
	if p.pos >= len(p.b) {
		return dvalue{}, fmt.Errorf("ends at byte %d", p.pos)
	}
	switch c := p.b[p.pos]; {
	case c == '%':
		if p.pos+1 >= len(p.b) || p.b[p.pos+1] != '(' {
			return dvalue{}, fmt.Errorf("'%%' without '(' at byte %d", p.pos)
		}
		p.pos += 2
		return p.kvlist(depth)
	case c == '(':
		p.pos++
		return p.list(depth)
	default:
		s, err := p.str()
		return dvalue{str: s}, err
	}
}

func (p *dlistParser) kvlist(depth int) (dvalue, error) {
	v := dvalue{kv: []dkv{}}
	for {
		p.skipSpace()
		if p.pos >= len(p.b) {
			return v, fmt.Errorf("unterminated kvlist")
		}
		if p.b[p.pos] == ')' {
			p.pos++
			return v, nil
		}
		key, err := p.str()
		if err != nil {
			return v, err
		}
		val, err := p.value(depth + 1)
		if err != nil {
			return v, err
		}
		v.kv = append(v.kv, dkv{key, val})
	}
}

func (p *dlistParser) list(depth int) (dvalue, error) {
	v := dvalue{list: []dvalue{}}
	for {
		p.skipSpace()
		if p.pos >= len(p.b) {
			return v, fmt.Errorf("unterminated list")
		}
		if p.b[p.pos] == ')' {
			p.pos++
			return v, nil
		}
		item, err := p.value(depth + 1)
		if err != nil {
			return v, err
		}
		v.list = append(v.list, item)
	}
}

// str reads an atom, a quoted string or a literal; the atom NIL reads as "".
func (p *dlistParser) str() (string, error) {
	p.skipSpace()
	if p.pos >= len(p.b) {
		return "", fmt.Errorf("string expected at end")
	}
	switch p.b[p.pos] {
	case '"':
		return p.quoted()
	case '{':
		return p.literal()
	case '(', ')', '%':
		return "", fmt.Errorf("string expected at byte %d", p.pos)
	}
	start := p.pos
	for p.pos < len(p.b) && !bytes.ContainsRune([]byte(" \t\r\n()\""), rune(p.b[p.pos])) {
		p.pos++
	}
	s := string(p.b[start:p.pos])
	if s == "NIL" {
		return "", nil
	}
	return s, nil
}

func (p *dlistParser) quoted() (string, error) {
	var out []byte
	for p.pos++; p.pos < len(p.b); p.pos++ {
		switch c := p.b[p.pos]; c {
		case '"':
			p.pos++
			return string(out), nil
		case '\\':
			p.pos++
			if p.pos >= len(p.b) {
				return "", fmt.Errorf("unterminated quoted string")
			}
			out = append(out, p.b[p.pos])
		default:
			out = append(out, c)
		}
	}
	return "", fmt.Errorf("unterminated quoted string")
}

func (p *dlistParser) literal() (string, error) {
	end := bytes.IndexByte(p.b[p.pos:], '}')
	if end < 0 {
		return "", fmt.Errorf("unterminated literal length")
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(string(p.b[p.pos+1:p.pos+end]), "+"), 10, 31)
	if err != nil {
		return "", fmt.Errorf("literal length: %w", err)
	}
	p.pos += end + 1
	if p.pos < len(p.b) && p.b[p.pos] == '\r' {
		p.pos++
	}
	if p.pos >= len(p.b) || p.b[p.pos] != '\n' {
		return "", fmt.Errorf("literal without newline")
	}
	p.pos++
	if uint64(len(p.b)-p.pos) < n {
		return "", fmt.Errorf("literal of %d bytes, %d left", n, len(p.b)-p.pos)
	}
	s := string(p.b[p.pos : p.pos+int(n)])
	p.pos += int(n)
	return s, nil
}
