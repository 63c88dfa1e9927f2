package synclog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Entry is one sync-log entry (csync-protocol.md §4.3–4.4).
type Entry struct {
	Type string   // upper-cased: MAILBOX, APPEND, RENAME, USER, …
	Args []string // unquoted arguments
	Line int      // 1-based line number in the file it came from
}

func (e Entry) String() string { return e.Type + " " + strings.Join(e.Args, " ") }

// BadLine is a malformed sync-log line, recorded and skipped.
type BadLine struct {
	Line int
	Text string
	Err  string
}

// logArity is the number of arguments each 3.6 entry type takes.
var logArity = map[string]int{
	"USER": 1, "UNUSER": 1, "META": 1, "SIEVE": 1,
	"APPEND": 1, "MAILBOX": 1, "UNMAILBOX": 1, "QUOTA": 1, "ANNOTATION": 1,
	"DOUBLEMAILBOX": 2, "RENAME": 2, "SEEN": 2, "SUB": 2, "UNSUB": 2,
}

var errShort = errors.New("unexpected end of input")

// Parse parses the content of a sync-log file held in memory (tests and tools; the
// replicator streams the file with a Scanner, which gives the same result).
func Parse(data []byte) (entries []Entry, bad []BadLine) {
	return ScanAll(NewScanner(bytes.NewReader(data)))
}

// ScanAll reads a scanner to its end.
func ScanAll(s *Scanner) (entries []Entry, bad []BadLine) {
	for {
		e, b, ok := s.Next()
		switch {
		case !ok:
			return entries, bad
		case b != nil:
			bad = append(bad, *b)
		default:
			entries = append(entries, e)
		}
	}
}

// maxLogLine bounds the bytes a Scanner holds for one physical line; a longer line is
// reported malformed and skipped without being held. It is above the largest literal the
// parser accepts (1 MiB), so it changes nothing for a line that could be valid.
const maxLogLine = 2 << 20

// Scanner reads sync-log entries one at a time the way sync_client's reader does:
// TYPE is a word (upper-cased), each argument an atom, a "quoted" string with backslash
// escapes, or an IMAP literal {N}/{N+}; an optional CR before LF; blank lines skipped.
// A malformed line, or a line of an unknown type or wrong arity, is returned as a
// BadLine and skipped; reading resumes after its LF. It holds at most the physical lines
// of one entry (an entry spans more than one only through literals), so memory does not
// grow with the length of the log.
type Scanner struct {
	r    *bufio.Reader
	buf  []byte // whole physical lines not yet parsed; the last may lack its LF at EOF
	line int    // line number of buf[0]
	next int    // line number of the next physical line to read
	eof  bool
	long *BadLine // an over-long line met while reading ahead, reported after buf
	err  error
}

// NewScanner returns a scanner reading r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, 64<<10), line: 1, next: 1}
}

// Err is the read error that ended the scan early (nil at a clean end of input).
func (s *Scanner) Err() error { return s.err }

// Next returns the next entry, or the next malformed line as bad; ok is false at the end
// of the input or on a read error (see Err).
func (s *Scanner) Next() (e Entry, bad *BadLine, ok bool) {
	for {
		if len(s.buf) == 0 {
			if s.long != nil {
				b := s.long
				s.long, s.line = nil, b.Line+1
				return Entry{}, b, true
			}
			if !s.fill() {
				if s.long != nil {
					continue
				}
				return Entry{}, nil, false
			}
		}
		pe, rest, lines, err := parseEntry(s.buf)
		if errors.Is(err, errShort) && s.long == nil && s.fill() {
			continue // the entry goes on in the next physical line (a literal)
		}
		if err == nil && pe == nil { // blank line
			s.consume(rest, lines)
			continue
		}
		if err == nil {
			pe.Type = strings.ToUpper(pe.Type)
			if n, known := logArity[pe.Type]; !known {
				err = fmt.Errorf("unknown entry type %q", pe.Type)
			} else if len(pe.Args) != n {
				err = fmt.Errorf("%s takes %d argument(s), got %d", pe.Type, n, len(pe.Args))
			}
		}
		if err != nil {
			// Skip the physical line where the entry started.
			text, rest := s.buf, []byte(nil)
			if i := bytes.IndexByte(s.buf, '\n'); i >= 0 {
				text, rest = s.buf[:i], s.buf[i+1:]
			}
			b := &BadLine{Line: s.line, Text: strings.TrimRight(string(text), "\r"), Err: err.Error()}
			s.consume(rest, 1)
			return Entry{}, b, true
		}
		pe.Line = s.line
		s.consume(rest, lines)
		return *pe, nil, true
	}
}

// consume drops the parsed lines from buf.
func (s *Scanner) consume(rest []byte, lines int) {
	s.line += lines
	if len(rest) == 0 {
		s.buf = s.buf[:0]
		return
	}
	s.buf = append(s.buf[:0], rest...)
}

// fill appends the next physical line to buf. It returns false at the end of the input,
// on a read error, or when the line is longer than maxLogLine (then recorded in s.long
// and skipped up to its LF).
func (s *Scanner) fill() bool {
	if s.eof {
		return false
	}
	start := len(s.buf)
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(s.buf)-start+len(chunk) > maxLogLine {
			s.skipLong(s.buf[start:], chunk, err)
			s.buf = s.buf[:start]
			return false
		}
		s.buf = append(s.buf, chunk...)
		switch {
		case err == nil:
			s.next++
			return true
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			s.eof = true
			return len(s.buf) > start
		default:
			s.eof, s.err = true, fmt.Errorf("read sync log: %w", err)
			return false
		}
	}
}

// skipLong records an over-long line and reads past its LF without holding it.
func (s *Scanner) skipLong(head, chunk []byte, err error) {
	text := append(slices.Clone(head), chunk...)
	s.long = &BadLine{Line: s.next, Text: clip(text), Err: fmt.Sprintf("line longer than %d bytes", maxLogLine)}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = s.r.ReadSlice('\n')
	}
	switch {
	case err == nil:
		s.next++
	case errors.Is(err, io.EOF):
		s.eof = true
	default:
		s.eof, s.err = true, fmt.Errorf("read sync log: %w", err)
	}
}

// parseEntry parses one entry from the start of data. It returns (nil, rest, 1, nil)
// for a blank line, and the number of physical lines consumed.
func parseEntry(data []byte) (*Entry, []byte, int, error) {
	lines := 1
	i := 0
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i < len(data) && data[i] == '\r' {
		i++
	}
	if i >= len(data) || data[i] == '\n' {
		if i < len(data) {
			i++
		}
		return nil, data[i:], 1, nil
	}
	// TYPE: a word of letters.
	j := i
	for j < len(data) && isWordByte(data[j]) {
		j++
	}
	if j == i {
		return nil, nil, 0, fmt.Errorf("no entry type at %q", clip(data[i:]))
	}
	e := &Entry{Type: string(data[i:j])}
	p := j
	for {
		if p < len(data) && data[p] == '\r' && p+1 < len(data) && data[p+1] == '\n' {
			p++
		}
		if p >= len(data) {
			return nil, nil, 0, errShort // no LF: a torn last line
		}
		if data[p] == '\n' {
			return e, data[p+1:], lines, nil
		}
		if data[p] != ' ' {
			return nil, nil, 0, fmt.Errorf("garbage at end of input line: %q", clip(data[p:]))
		}
		p++
		arg, n, nl, err := parseAstring(data[p:])
		if err != nil {
			return nil, nil, 0, err
		}
		e.Args = append(e.Args, arg)
		p += n
		lines += nl
	}
}

func isWordByte(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '_'
}

// parseAstring reads an atom, quoted string or literal; it returns the value, the bytes
// consumed and the newlines consumed inside a literal.
func parseAstring(d []byte) (string, int, int, error) {
	if len(d) == 0 {
		return "", 0, 0, errShort
	}
	switch d[0] {
	case '"':
		var b strings.Builder
		for i := 1; i < len(d); i++ {
			switch d[i] {
			case '\\':
				i++
				if i >= len(d) {
					return "", 0, 0, errShort
				}
				b.WriteByte(d[i])
			case '"':
				return b.String(), i + 1, 0, nil
			case '\r', '\n':
				return "", 0, 0, errors.New("newline inside quoted string")
			default:
				b.WriteByte(d[i])
			}
		}
		return "", 0, 0, errShort
	case '{':
		end := bytes.IndexByte(d, '}')
		if nl := bytes.IndexByte(d, '\n'); end < 0 || nl >= 0 && nl < end {
			return "", 0, 0, errors.New("unterminated literal size")
		}
		num := strings.TrimSuffix(string(d[1:end]), "+")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n > 1<<20 {
			return "", 0, 0, fmt.Errorf("bad literal size %q", d[1:end])
		}
		p := end + 1
		if p < len(d) && d[p] == '\r' {
			p++
		}
		if p >= len(d) || d[p] != '\n' {
			return "", 0, 0, errors.New("literal size not followed by newline")
		}
		p++
		if len(d)-p < n {
			return "", 0, 0, errShort
		}
		if bytes.ContainsAny(d[p:p+n], "\r\n") {
			// No mailbox name holds a line break (Cyrus's logger refuses one), so this
			// is corruption; rejecting it keeps the lines it would swallow.
			return "", 0, 0, errors.New("literal holds a line break")
		}
		return string(d[p : p+n]), p + n, 1, nil
	}
	i := 0
	for i < len(d) && d[i] != ' ' && d[i] != '\r' && d[i] != '\n' && d[i] != '(' && d[i] != ')' && d[i] != '"' {
		i++
	}
	if i == 0 {
		return "", 0, 0, fmt.Errorf("bad argument at %q", clip(d))
	}
	return string(d[:i]), i, 0, nil
}

func clip(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// QuoteArg formats one argument the way Cyrus's sync_quote_name does, so tests and
// tools can write log lines Cyrus would write.
func QuoteArg(s string) string {
	if s == "" {
		return `""`
	}
	needQuote := false
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\', '"', '{', '}':
			needQuote = true
			b.WriteByte('\\')
		case ' ', '\t', '(', ')':
			needQuote = true
		}
		b.WriteByte(c)
	}
	if needQuote {
		return `"` + b.String() + `"`
	}
	return s
}
