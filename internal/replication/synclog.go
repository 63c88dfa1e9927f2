package replication

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LogEntry is one sync-log entry (csync-protocol.md §4.3–4.4).
type LogEntry struct {
	Type string   // upper-cased: MAILBOX, APPEND, RENAME, USER, …
	Args []string // unquoted arguments
	Line int      // 1-based line number in the file it came from
}

func (e LogEntry) String() string { return e.Type + " " + strings.Join(e.Args, " ") }

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

// ParseLog parses the content of a sync-log file the way sync_client's reader does:
// TYPE is a word (upper-cased), each argument an atom, a "quoted" string with backslash
// escapes, or an IMAP literal {N}/{N+}; an optional CR before LF; blank lines skipped.
// A malformed line, or a line of an unknown type or wrong arity, is returned in bad and
// skipped; parsing resumes after its LF.
func ParseLog(data []byte) (entries []LogEntry, bad []BadLine) {
	line := 1
	for len(data) > 0 {
		start, startLine := data, line
		e, rest, lines, err := parseEntry(data)
		if err == nil && e == nil { // blank line
			data, line = rest, line+lines
			continue
		}
		if err == nil {
			e.Type = strings.ToUpper(e.Type)
			if n, ok := logArity[e.Type]; !ok {
				err = fmt.Errorf("unknown entry type %q", e.Type)
			} else if len(e.Args) != n {
				err = fmt.Errorf("%s takes %d argument(s), got %d", e.Type, n, len(e.Args))
			}
		}
		if err != nil {
			// Skip to the end of the physical line where the entry started.
			i := bytes.IndexByte(start, '\n')
			text := start
			if i >= 0 {
				text, data = start[:i], start[i+1:]
			} else {
				data = nil
			}
			bad = append(bad, BadLine{Line: startLine, Text: strings.TrimRight(string(text), "\r"), Err: err.Error()})
			line = startLine + 1
			continue
		}
		e.Line = startLine
		entries = append(entries, *e)
		data, line = rest, line+lines
	}
	return entries, bad
}

// parseEntry parses one entry from the start of data. It returns (nil, rest, 1, nil)
// for a blank line, and the number of physical lines consumed.
func parseEntry(data []byte) (*LogEntry, []byte, int, error) {
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
	e := &LogEntry{Type: string(data[i:j])}
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
		if end < 0 {
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

// QuoteLogArg formats one argument the way Cyrus's sync_quote_name does, so tests and
// tools can write log lines Cyrus would write.
func QuoteLogArg(s string) string {
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
