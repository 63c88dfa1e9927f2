package csync

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is the type of a dlist value.
type Kind uint8

// The dlist value kinds. Atoms, quoted strings and literals all decode to KindString;
// Value.Form records which wire form was seen.
const (
	KindNil    Kind = iota // NIL
	KindString             // atom, "quoted" or {N}/{N+} literal
	KindFlag               // \Seen: a system flag, written raw
	KindList               // ( item item ... )
	KindKVList             // %( KEY value KEY value ... )
	KindFile               // %{partition guid size} followed by size raw bytes
)

func (k Kind) String() string {
	switch k {
	case KindNil:
		return "nil"
	case KindString:
		return "string"
	case KindFlag:
		return "flag"
	case KindList:
		return "list"
	case KindKVList:
		return "kvlist"
	case KindFile:
		return "file"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Form is the wire form a string arrived in. The encoder ignores it and always picks the
// form from the content (§1.2), so it is informational only.
type Form uint8

// String wire forms.
const (
	FormAny     Form = iota // not decoded from the wire
	FormAtom                // bare atom
	FormQuoted              // "quoted"
	FormLiteral             // {N} or {N+} literal
)

// Value is one dlist item. Exactly the fields matching Kind are meaningful.
type Value struct {
	Kind   Kind
	Form   Form    // KindString only: how it was received
	S      string  // KindString: the bytes; KindFlag: the flag including its backslash
	Items  []Value // KindList
	Fields []Field // KindKVList, in wire order
	File   *File   // KindFile
}

// Field is one KEY value pair of a kvlist.
type Field struct {
	Key   string
	Value Value
}

// File is a file literal: the header and, when held in memory, the content.
type File struct {
	Partition string
	GUID      string
	Size      uint32
	Data      []byte // nil when the content was streamed elsewhere
}

// Nil is the NIL value.
var Nil = Value{Kind: KindNil}

// Str returns a string value; the encoder picks atom, quoted or literal form.
func Str(s string) Value { return Value{Kind: KindString, S: s} }

// Num returns a decimal number value.
func Num(n uint64) Value { return Value{Kind: KindString, S: strconv.FormatUint(n, 10)} }

// Int returns a decimal value for a signed number (dates are Unix seconds); negative
// numbers are clamped to 0 because the protocol has only unsigned numbers.
func Int(n int64) Value {
	if n < 0 {
		n = 0
	}
	return Num(uint64(n))
}

// Flag returns a system flag value such as `\Seen`.
func Flag(name string) Value { return Value{Kind: KindFlag, S: name} }

// List returns a list value.
func List(items ...Value) Value {
	if items == nil {
		items = []Value{}
	}
	return Value{Kind: KindList, Items: items}
}

// StrList returns a list of string values.
func StrList(ss []string) Value {
	items := make([]Value, len(ss))
	for i, s := range ss {
		items[i] = Str(s)
	}
	return List(items...)
}

// KV returns a kvlist value from alternating key, value pairs built with Field.
func KV(fields ...Field) Value {
	if fields == nil {
		fields = []Field{}
	}
	return Value{Kind: KindKVList, Fields: fields}
}

// F is shorthand for a Field.
func F(key string, v Value) Field { return Field{Key: key, Value: v} }

// FileValue returns a file literal value holding data in memory.
func FileValue(partition, guid string, data []byte) Value {
	return Value{Kind: KindFile, File: &File{Partition: partition, GUID: guid, Size: uint32(len(data)), Data: data}}
}

// ErrType is returned (wrapped) by the typed accessors when a value has the wrong kind
// or a malformed content.
var ErrType = errors.New("csync: dlist value has the wrong type")

func typeErr(want string, v Value) error {
	return fmt.Errorf("%w: want %s, have %s", ErrType, want, v.Kind)
}

// IsNil reports whether v is NIL.
func (v Value) IsNil() bool { return v.Kind == KindNil }

// Get returns the value of the first field named key in a kvlist. Keys are matched
// case-sensitively, as the server does.
func (v Value) Get(key string) (Value, bool) {
	if v.Kind != KindKVList {
		return Value{}, false
	}
	for i := range v.Fields {
		if v.Fields[i].Key == key {
			return v.Fields[i].Value, true
		}
	}
	return Value{}, false
}

// Str returns the text of a string (the String accessor). NIL is an error.
func (v Value) Str() (string, error) {
	if v.Kind != KindString {
		return "", typeErr("string", v)
	}
	return v.S, nil
}

// Num64 parses an unsigned decimal number; like the server, it requires digits only.
func (v Value) Num64() (uint64, error) {
	if v.Kind != KindString {
		return 0, typeErr("number", v)
	}
	if v.S == "" {
		return 0, fmt.Errorf("%w: empty number", ErrType)
	}
	for i := 0; i < len(v.S); i++ {
		if v.S[i] < '0' || v.S[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not a number", ErrType, v.S)
		}
	}
	n, err := strconv.ParseUint(v.S, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q out of range", ErrType, v.S)
	}
	return n, nil
}

// Num parses an unsigned 32-bit decimal number.
func (v Value) Num() (uint32, error) {
	n, err := v.Num64()
	if err != nil {
		return 0, err
	}
	if n > 0xffffffff {
		return 0, fmt.Errorf("%w: %d exceeds 32 bits", ErrType, n)
	}
	return uint32(n), nil
}

// GUID returns a 40-hex-digit message GUID, lower-cased.
func (v Value) GUID() (string, error) {
	if v.Kind != KindString {
		return "", typeErr("guid", v)
	}
	if !IsGUID(v.S) {
		return "", fmt.Errorf("%w: %q is not a 40-hex-digit GUID", ErrType, v.S)
	}
	return strings.ToLower(v.S), nil
}

// List returns the items of a list.
func (v Value) List() ([]Value, error) {
	if v.Kind != KindList {
		return nil, typeErr("list", v)
	}
	return v.Items, nil
}

// IsGUID reports whether s is exactly 40 hex digits.
func IsGUID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Equal reports whether two values carry the same data; the wire Form of strings is
// ignored, and an in-memory file is compared by header and content.
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case KindNil:
		return true
	case KindString, KindFlag:
		return v.S == w.S
	case KindList:
		if len(v.Items) != len(w.Items) {
			return false
		}
		for i := range v.Items {
			if !v.Items[i].Equal(w.Items[i]) {
				return false
			}
		}
		return true
	case KindKVList:
		if len(v.Fields) != len(w.Fields) {
			return false
		}
		for i := range v.Fields {
			if v.Fields[i].Key != w.Fields[i].Key || !v.Fields[i].Value.Equal(w.Fields[i].Value) {
				return false
			}
		}
		return true
	case KindFile:
		a, b := v.File, w.File
		if a == nil || b == nil {
			return a == b
		}
		return a.Partition == b.Partition && a.GUID == b.GUID && a.Size == b.Size && string(a.Data) == string(b.Data)
	}
	return false
}

// String renders v in wire form for logs; literals and file contents are abbreviated.
func (v Value) String() string {
	var b strings.Builder
	v.debug(&b)
	return b.String()
}

func (v Value) debug(b *strings.Builder) {
	switch v.Kind {
	case KindNil:
		b.WriteString("NIL")
	case KindFlag:
		b.WriteString(v.S)
	case KindString:
		switch stringForm(v.S) {
		case FormAtom:
			b.WriteString(v.S)
		case FormQuoted:
			b.WriteByte('"')
			b.WriteString(v.S)
			b.WriteByte('"')
		default:
			fmt.Fprintf(b, "{%d+}<literal>", len(v.S))
		}
	case KindList:
		b.WriteByte('(')
		for i, it := range v.Items {
			if i > 0 {
				b.WriteByte(' ')
			}
			it.debug(b)
		}
		b.WriteByte(')')
	case KindKVList:
		b.WriteString("%(")
		for i, f := range v.Fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(f.Key)
			b.WriteByte(' ')
			f.Value.debug(b)
		}
		b.WriteByte(')')
	case KindFile:
		if v.File == nil {
			b.WriteString("%{?}")
			return
		}
		fmt.Fprintf(b, "%%{%s %s %d}<file>", v.File.Partition, v.File.GUID, v.File.Size)
	}
}
