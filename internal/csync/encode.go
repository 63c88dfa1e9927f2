package csync

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Wire limits of the Debian 3.6.1 sync_server (csync-protocol.md §1.2, §1.3).
const (
	// maxAtomQuoted is MAXQSTRING: atoms and quoted strings must be shorter.
	maxAtomQuoted = 1024
	// MaxSendLiteral is the largest ordinary literal we send: Debian compiles in
	// maxliteral = 131072 and kills the session above it. File literals are exempt.
	MaxSendLiteral = 128*1024 - 1
)

// ErrEncode is returned (wrapped) when a value cannot be put on the wire.
var ErrEncode = errors.New("csync: cannot encode dlist value")

// isAtomByte reports whether c may appear in an atom we send (imparse_isatom).
func isAtomByte(c byte) bool {
	if c < 0x20 || c >= 0x7f {
		return false
	}
	switch c {
	case ' ', '{', '(', ')', '"', '%', '*', '\\':
		return false
	}
	return true
}

// isQChar reports whether c may appear inside a quoted string we send. Quoted strings
// are never backslash-escaped, so anything needing an escape forces a literal.
func isQChar(c byte) bool {
	return c != 0 && c < 0x80 && c != '\r' && c != '\n' && c != '"' && c != '%' && c != '\\'
}

// stringForm returns the form the encoder uses for s (§1.2 / §9.2).
func stringForm(s string) Form {
	if s == "" {
		return FormQuoted
	}
	if len(s) < maxAtomQuoted && !strings.EqualFold(s, "NIL") {
		atom := true
		for i := 0; i < len(s); i++ {
			if !isAtomByte(s[i]) {
				atom = false
				break
			}
		}
		if atom {
			return FormAtom
		}
	}
	if len(s) < maxAtomQuoted {
		for i := 0; i < len(s); i++ {
			if !isQChar(s[i]) {
				return FormLiteral
			}
		}
		return FormQuoted
	}
	return FormLiteral
}

func validAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomByte(s[i]) {
			return false
		}
	}
	return true
}

// Marshal encodes v in wire form.
func Marshal(v Value) ([]byte, error) { return AppendValue(nil, v) }

// AppendValue appends the wire form of v to dst. Strings become atoms, quoted strings
// or `{N+}` literals; `{N}` is never produced.
func AppendValue(dst []byte, v Value) ([]byte, error) {
	return appendValue(dst, v, 0)
}

func appendValue(dst []byte, v Value, depth int) ([]byte, error) {
	if depth > DefaultLimits.MaxDepth {
		return dst, fmt.Errorf("%w: nesting deeper than %d", ErrEncode, DefaultLimits.MaxDepth)
	}
	switch v.Kind {
	case KindNil:
		return append(dst, "NIL"...), nil
	case KindString:
		return appendString(dst, v.S)
	case KindFlag:
		if len(v.S) < 2 || v.S[0] != '\\' || !validAtom(v.S[1:]) {
			return dst, fmt.Errorf("%w: bad flag %q", ErrEncode, v.S)
		}
		return append(dst, v.S...), nil
	case KindList:
		dst = append(dst, '(')
		for i, it := range v.Items {
			if i > 0 {
				dst = append(dst, ' ')
			}
			var err error
			if dst, err = appendValue(dst, it, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ')'), nil
	case KindKVList:
		dst = append(dst, "%("...)
		for i, f := range v.Fields {
			if i > 0 {
				dst = append(dst, ' ')
			}
			if !validAtom(f.Key) {
				return dst, fmt.Errorf("%w: bad kvlist key %q", ErrEncode, f.Key)
			}
			dst = append(dst, f.Key...)
			dst = append(dst, ' ')
			var err error
			if dst, err = appendValue(dst, f.Value, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ')'), nil
	case KindFile:
		f := v.File
		if f == nil {
			return dst, fmt.Errorf("%w: file value without header", ErrEncode)
		}
		if int64(len(f.Data)) != int64(f.Size) {
			return dst, fmt.Errorf("%w: file %s: size %d but %d bytes held", ErrEncode, f.GUID, f.Size, len(f.Data))
		}
		var err error
		if dst, err = appendFileHeader(dst, f.Partition, f.GUID, int64(f.Size)); err != nil {
			return dst, err
		}
		return append(dst, f.Data...), nil
	}
	return dst, fmt.Errorf("%w: unknown kind %d", ErrEncode, v.Kind)
}

func appendString(dst []byte, s string) ([]byte, error) {
	switch stringForm(s) {
	case FormAtom:
		return append(dst, s...), nil
	case FormQuoted:
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"'), nil
	}
	if len(s) > MaxSendLiteral {
		return dst, fmt.Errorf("%w: literal of %d bytes exceeds the server's %d-byte limit", ErrEncode, len(s), MaxSendLiteral+1)
	}
	dst = append(dst, '{')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, "+}\r\n"...)
	return append(dst, s...), nil
}

// appendFileHeader writes `%{partition guid size}` CRLF.
func appendFileHeader(dst []byte, partition, guid string, size int64) ([]byte, error) {
	if !IsGUID(guid) {
		return dst, fmt.Errorf("%w: file literal GUID %q is not 40 hex digits", ErrEncode, guid)
	}
	if size < 0 || size > 0xffffffff {
		return dst, fmt.Errorf("%w: file size %d out of range", ErrEncode, size)
	}
	if stringForm(partition) == FormLiteral {
		return dst, fmt.Errorf("%w: partition name %q needs a literal", ErrEncode, partition)
	}
	dst = append(dst, "%{"...)
	dst, _ = appendString(dst, partition)
	dst = append(dst, ' ')
	dst = append(dst, strings.ToLower(guid)...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, size, 10)
	return append(dst, "}\r\n"...), nil
}
