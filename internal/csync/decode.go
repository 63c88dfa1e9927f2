package csync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits bound what the decoder accepts, so that a hostile or broken peer cannot make
// it allocate without bound or recurse deeply.
type Limits struct {
	MaxDepth  int   // nesting of lists/kvlists
	MaxString int   // bytes in one atom, quoted string or literal
	MaxFile   int64 // bytes of a file literal held in memory
	MaxItems  int   // values in one data line
	MaxLine   int   // bytes in a status or banner line
}

// DefaultLimits are generous for real servers: a FULLMAILBOX of a million records fits.
var DefaultLimits = Limits{
	MaxDepth:  32,
	MaxString: 64 << 20,
	MaxFile:   256 << 20,
	MaxItems:  50_000_000,
	MaxLine:   64 << 10,
}

// ErrMalformed is returned (wrapped) for input that is not a valid dlist.
var ErrMalformed = errors.New("csync: malformed dlist")

// decoder reads dlist items from a buffered stream.
type decoder struct {
	r     *bufio.Reader
	lim   Limits
	items int
	// Scratch stacks: containers collect their children here and copy them into an
	// exactly sized slice when they close, which avoids append-growth garbage.
	vstack []Value
	fstack []Field
}

// internKeys avoids allocating the keys and small values every record repeats.
var internKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"UNIQUEID", "MBOXNAME", "MBOXTYPE", "SYNC_CRC", "SYNC_CRC_ANNOT", "LAST_UID",
		"HIGHESTMODSEQ", "RECENTUID", "RECENTTIME", "LAST_APPENDDATE", "POP3_LAST_LOGIN", "POP3_SHOW_AFTER",
		"XCONVMODSEQ", "RACLMODSEQ", "UIDVALIDITY", "PARTITION", "ACL", "OPTIONS", "QUOTAROOT", "CREATEDMODSEQ",
		"FOLDERMODSEQ", "ANNOTATIONS", "RECORD", "UID", "MODSEQ", "LAST_UPDATED", "FLAGS", "INTERNALDATE", "SIZE",
		"GUID", "ENTRY", "USERID", "VALUE", "MAILBOX", "QUOTA", "SEEN", "LSUB", "SIEVE", "MESSAGE", "MISSING",
		"default", "0", "1", "2", "P", "/vendor/cmu/cyrus-imapd/thrid", "/vendor/cmu/cyrus-imapd/savedate",
		"/vendor/cmu/cyrus-imapd/createdmodseq", "Seen", "Deleted", "Flagged", "Answered", "Draft", "Expunged"} {
		m[k] = k
	}
	return m
}()

func intern(b []byte) string {
	if s, ok := internKeys[string(b)]; ok {
		return s
	}
	return string(b)
}

func newDecoder(r *bufio.Reader, lim Limits) *decoder {
	return &decoder{r: r, lim: lim}
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ioErr turns a read error into a decoding error: EOF inside an item is unexpected.
func (d *decoder) ioErr(err error, what string) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: end of input in %s: %w", ErrMalformed, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("csync: reading %s: %w", what, err)
}

func (d *decoder) peek(what string) (byte, error) {
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, d.ioErr(err, what)
	}
	return b[0], nil
}

func (d *decoder) readByte(what string) (byte, error) {
	c, err := d.r.ReadByte()
	if err != nil {
		return 0, d.ioErr(err, what)
	}
	return c, nil
}

func (d *decoder) expect(c byte, what string) error {
	got, err := d.readByte(what)
	if err != nil {
		return err
	}
	if got != c {
		return d.errf("%s: expected %q, got %q", what, c, got)
	}
	return nil
}

// isDelim reports whether c ends an atom (whitespace, parentheses or a quote).
func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\v', '\f', '(', ')', '"':
		return true
	}
	return false
}

// readAtom reads bytes up to the next delimiter; it may return an empty string.
func (d *decoder) readAtom(what string) (string, error) {
	var long []byte
	for {
		buf, err := d.r.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) && len(long) > 0 {
				// EOF ends an atom only at top level; callers that need more report it.
				return string(long), nil
			}
			if errors.Is(err, io.EOF) {
				return "", nil
			}
			return "", d.ioErr(err, what)
		}
		if n := d.r.Buffered(); n > 1 {
			buf, _ = d.r.Peek(n)
		}
		i := 0
		for i < len(buf) && !isDelim(buf[i]) {
			i++
		}
		if len(long)+i > d.lim.MaxString {
			return "", d.errf("%s longer than %d bytes", what, d.lim.MaxString)
		}
		if i < len(buf) {
			var s string
			if long == nil {
				s = intern(buf[:i])
			} else {
				s = string(append(long, buf[:i]...))
			}
			_, _ = d.r.Discard(i)
			return s, nil
		}
		long = append(long, buf...)
		_, _ = d.r.Discard(len(buf))
	}
}

func (d *decoder) count() error {
	d.items++
	if d.items > d.lim.MaxItems {
		return d.errf("more than %d values", d.lim.MaxItems)
	}
	return nil
}

// value reads one dlist value.
func (d *decoder) value(depth int) (Value, error) {
	if depth > d.lim.MaxDepth {
		return Value{}, d.errf("nesting deeper than %d", d.lim.MaxDepth)
	}
	if err := d.count(); err != nil {
		return Value{}, err
	}
	c, err := d.peek("value")
	if err != nil {
		return Value{}, err
	}
	switch c {
	case '(':
		return d.list(depth)
	case '%':
		_, _ = d.r.ReadByte()
		c2, err := d.peek("kvlist or file literal")
		if err != nil {
			return Value{}, err
		}
		switch c2 {
		case '(':
			return d.kvlist(depth)
		case '{':
			return d.file()
		}
		return Value{}, d.errf("unexpected %q after %%", c2)
	case '{':
		s, err := d.literal()
		return Value{Kind: KindString, Form: FormLiteral, S: s}, err
	case '"':
		s, err := d.quoted()
		return Value{Kind: KindString, Form: FormQuoted, S: s}, err
	case '\\':
		_, _ = d.r.ReadByte()
		name, err := d.readAtom("flag")
		if err != nil {
			return Value{}, err
		}
		if name == "" {
			return Value{}, d.errf("empty flag")
		}
		return Value{Kind: KindFlag, S: flagName(name)}, nil
	}
	if isDelim(c) {
		return Value{}, d.errf("expected a value, got %q", c)
	}
	s, err := d.readAtom("atom")
	if err != nil {
		return Value{}, err
	}
	if s == "NIL" {
		return Nil, nil
	}
	return Value{Kind: KindString, Form: FormAtom, S: s}, nil
}

// sep consumes the single space between items and reports whether the container ends.
func (d *decoder) sepOrEnd(first bool, what string) (end bool, err error) {
	c, err := d.peek(what)
	if err != nil {
		return false, err
	}
	if c == ')' {
		_, _ = d.r.ReadByte()
		return true, nil
	}
	if first {
		return false, nil
	}
	if c != ' ' {
		return false, d.errf("%s: expected space or ')', got %q", what, c)
	}
	_, _ = d.r.ReadByte()
	return false, nil
}

func (d *decoder) list(depth int) (Value, error) {
	_, _ = d.r.ReadByte() // '('
	mark := len(d.vstack)
	defer func() { d.vstack = d.vstack[:mark] }()
	for first := true; ; first = false {
		end, err := d.sepOrEnd(first, "list")
		if err != nil {
			return Value{}, err
		}
		if end {
			items := make([]Value, len(d.vstack)-mark)
			copy(items, d.vstack[mark:])
			return Value{Kind: KindList, Items: items}, nil
		}
		it, err := d.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		d.vstack = append(d.vstack, it)
	}
}

func (d *decoder) kvlist(depth int) (Value, error) {
	_, _ = d.r.ReadByte() // '('
	mark := len(d.fstack)
	defer func() { d.fstack = d.fstack[:mark] }()
	for first := true; ; first = false {
		end, err := d.sepOrEnd(first, "kvlist")
		if err != nil {
			return Value{}, err
		}
		if end {
			fields := make([]Field, len(d.fstack)-mark)
			copy(fields, d.fstack[mark:])
			return Value{Kind: KindKVList, Fields: fields}, nil
		}
		key, err := d.readAtom("kvlist key")
		if err != nil {
			return Value{}, err
		}
		if key == "" || !validKeyRead(key) {
			c, _ := d.r.Peek(1)
			return Value{}, d.errf("kvlist: bad key %q before %q", key, c)
		}
		if err := d.expect(' ', "kvlist after key"); err != nil {
			return Value{}, err
		}
		val, err := d.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		d.fstack = append(d.fstack, Field{Key: key, Value: val})
	}
}

// validKeyRead rejects keys that would start another construct.
func validKeyRead(k string) bool {
	switch k[0] {
	case '{', '%', '\\':
		return false
	}
	return validAtom(k)
}

func (d *decoder) quoted() (string, error) {
	_, _ = d.r.ReadByte() // '"'
	var b strings.Builder
	for {
		c, err := d.readByte("quoted string")
		if err != nil {
			return "", err
		}
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			c, err = d.readByte("quoted string escape")
			if err != nil {
				return "", err
			}
		case '\r', '\n':
			return "", d.errf("line break inside a quoted string")
		}
		if b.Len() >= d.lim.MaxString {
			return "", d.errf("quoted string longer than %d bytes", d.lim.MaxString)
		}
		b.WriteByte(c)
	}
}

// readSize reads decimal digits up to a terminator; at most 10 digits (uint32 range
// is checked by callers).
func (d *decoder) readSize(what string) (int64, error) {
	var n int64
	digits := 0
	for {
		c, err := d.peek(what)
		if err != nil {
			return 0, err
		}
		if c < '0' || c > '9' {
			break
		}
		_, _ = d.r.ReadByte()
		digits++
		if digits > 10 {
			return 0, d.errf("%s: size has too many digits", what)
		}
		n = n*10 + int64(c-'0')
	}
	if digits == 0 {
		return 0, d.errf("%s: missing size", what)
	}
	return n, nil
}

// crlf consumes an optional CR and a required LF.
func (d *decoder) crlf(what string) error {
	c, err := d.readByte(what)
	if err != nil {
		return err
	}
	if c == '\r' {
		if c, err = d.readByte(what); err != nil {
			return err
		}
	}
	if c != '\n' {
		return d.errf("%s: expected end of line, got %q", what, c)
	}
	return nil
}

// literal reads `{N}` or `{N+}`, CRLF, then N bytes.
func (d *decoder) literal() (string, error) {
	_, _ = d.r.ReadByte() // '{'
	n, err := d.readSize("literal")
	if err != nil {
		return "", err
	}
	c, err := d.readByte("literal")
	if err != nil {
		return "", err
	}
	if c == '+' {
		if c, err = d.readByte("literal"); err != nil {
			return "", err
		}
	}
	if c != '}' {
		return "", d.errf("literal: expected '}', got %q", c)
	}
	if n > int64(d.lim.MaxString) {
		return "", d.errf("literal of %d bytes exceeds the limit of %d", n, d.lim.MaxString)
	}
	if err := d.crlf("literal header"); err != nil {
		return "", err
	}
	data, err := d.readN(n, "literal")
	return string(data), err
}

// readN reads exactly n bytes, growing the buffer only as data arrives so that a
// lying size cannot force a large allocation.
func (d *decoder) readN(n int64, what string) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	got, err := io.CopyN(&buf, d.r, n)
	if err != nil {
		return nil, d.ioErr(err, fmt.Sprintf("%s (%d of %d bytes)", what, got, n))
	}
	return buf.Bytes(), nil
}

// fileHeader reads `{partition guid size}` CRLF; the leading '%' is already consumed.
func (d *decoder) fileHeader() (File, error) {
	if err := d.expect('{', "file literal"); err != nil {
		return File{}, err
	}
	var part string
	c, err := d.peek("file literal partition")
	if err != nil {
		return File{}, err
	}
	if c == '"' {
		part, err = d.quoted()
	} else {
		part, err = d.readAtom("file literal partition")
	}
	if err != nil {
		return File{}, err
	}
	if part == "" {
		return File{}, d.errf("file literal: empty partition")
	}
	if err := d.expect(' ', "file literal"); err != nil {
		return File{}, err
	}
	guid, err := d.readAtom("file literal guid")
	if err != nil {
		return File{}, err
	}
	if !IsGUID(guid) {
		return File{}, d.errf("file literal: bad GUID %q", guid)
	}
	if err := d.expect(' ', "file literal"); err != nil {
		return File{}, err
	}
	size, err := d.readSize("file literal")
	if err != nil {
		return File{}, err
	}
	if size > 0xffffffff {
		return File{}, d.errf("file literal size %d exceeds 32 bits", size)
	}
	if err := d.expect('}', "file literal"); err != nil {
		return File{}, err
	}
	if err := d.crlf("file literal header"); err != nil {
		return File{}, err
	}
	return File{Partition: part, GUID: strings.ToLower(guid), Size: uint32(size)}, nil
}

func (d *decoder) file() (Value, error) {
	f, err := d.fileHeader()
	if err != nil {
		return Value{}, err
	}
	if int64(f.Size) > d.lim.MaxFile {
		return Value{}, d.errf("file literal of %d bytes exceeds the in-memory limit of %d", f.Size, d.lim.MaxFile)
	}
	if f.Data, err = d.readN(int64(f.Size), "file literal"); err != nil {
		return Value{}, err
	}
	return Value{Kind: KindFile, File: &f}, nil
}

// dataLine reads `KEY SP value` followed by the end of line; the "* " is consumed.
func (d *decoder) dataLine() (string, Value, error) {
	d.items = 0
	key, err := d.readAtom("data line key")
	if err != nil {
		return "", Value{}, err
	}
	if key == "" || !validKeyRead(key) {
		return "", Value{}, d.errf("data line: bad key %q", key)
	}
	if err := d.expect(' ', "data line after key "+key); err != nil {
		return "", Value{}, err
	}
	v, err := d.value(0)
	if err != nil {
		return "", Value{}, err
	}
	if err := d.crlf("end of data line " + key); err != nil {
		return "", Value{}, err
	}
	return key, v, nil
}

// Decode parses exactly one dlist value from data; a single trailing CRLF (or LF) is
// allowed. It never panics; malformed or truncated input returns an error wrapping
// ErrMalformed.
func Decode(data []byte) (Value, error) {
	return DecodeLimits(data, DefaultLimits)
}

// DecodeLimits is Decode with explicit limits.
func DecodeLimits(data []byte, lim Limits) (Value, error) {
	d := newDecoder(bufio.NewReader(bytes.NewReader(data)), lim)
	v, err := d.value(0)
	if err != nil {
		return Value{}, err
	}
	if err := d.trailer(); err != nil {
		return Value{}, err
	}
	return v, nil
}

// DecodeLine parses a data line `KEY value` CRLF as the server sends it after "* ".
func DecodeLine(data []byte) (string, Value, error) {
	d := newDecoder(bufio.NewReader(bytes.NewReader(data)), DefaultLimits)
	key, v, err := d.dataLine()
	if err != nil {
		return "", Value{}, err
	}
	if _, err := d.r.Peek(1); err != io.EOF {
		return "", Value{}, d.errf("trailing data after line")
	}
	return key, v, nil
}

func (d *decoder) trailer() error {
	c, err := d.r.ReadByte()
	if err == io.EOF {
		return nil
	}
	if c == '\r' {
		c, err = d.r.ReadByte()
		if err == io.EOF {
			return d.errf("lone CR after value")
		}
	}
	if c != '\n' {
		return d.errf("trailing data %q after value", c)
	}
	if _, err := d.r.Peek(1); err != io.EOF {
		return d.errf("trailing data after line")
	}
	return nil
}

// flagName prefixes the backslash, without allocating for the system flags.
func flagName(name string) string {
	switch name {
	case "Seen":
		return `\Seen`
	case "Deleted":
		return `\Deleted`
	case "Flagged":
		return `\Flagged`
	case "Answered":
		return `\Answered`
	case "Draft":
		return `\Draft`
	case "Expunged":
		return `\Expunged`
	}
	return `\` + name
}
