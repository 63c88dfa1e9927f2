package csync

import (
	"fmt"
	"math"
)

// kvReader pulls typed fields out of a kvlist and remembers the first error, so that
// struct decoders read as a flat list of fields.
type kvReader struct {
	v    Value
	what string
	err  error
}

func newKV(v Value, what string) *kvReader {
	r := &kvReader{v: v, what: what}
	if v.Kind != KindKVList {
		r.err = fmt.Errorf("%s: %w", what, typeErr("kvlist", v))
	}
	return r
}

func (r *kvReader) fail(key string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s field %s: %w", r.what, key, err)
	}
}

func (r *kvReader) get(key string, required bool) (Value, bool) {
	if r.err != nil {
		return Value{}, false
	}
	v, ok := r.v.Get(key)
	if !ok && required {
		r.fail(key, fmt.Errorf("%w: missing", ErrType))
	}
	return v, ok
}

func (r *kvReader) has(key string) bool {
	_, ok := r.v.Get(key)
	return ok
}

// str reads a string; NIL reads as "".
func (r *kvReader) str(key string, required bool) string {
	v, ok := r.get(key, required)
	if !ok || v.Kind == KindNil {
		return ""
	}
	s, err := v.Str()
	if err != nil {
		r.fail(key, err)
	}
	return s
}

func (r *kvReader) num(key string, required bool) uint32 {
	v, ok := r.get(key, required)
	if !ok {
		return 0
	}
	n, err := v.Num()
	if err != nil {
		r.fail(key, err)
	}
	return n
}

func (r *kvReader) num64(key string, required bool) uint64 {
	v, ok := r.get(key, required)
	if !ok {
		return 0
	}
	n, err := v.Num64()
	if err != nil {
		r.fail(key, err)
	}
	return n
}

// date reads Unix seconds.
func (r *kvReader) date(key string, required bool) int64 {
	n := r.num64(key, required)
	if n > math.MaxInt64 {
		r.fail(key, fmt.Errorf("%w: date %d out of range", ErrType, n))
		return 0
	}
	return int64(n)
}

func (r *kvReader) guid(key string, required bool) string {
	v, ok := r.get(key, required)
	if !ok {
		return ""
	}
	g, err := v.GUID()
	if err != nil {
		r.fail(key, err)
	}
	return g
}

func (r *kvReader) list(key string, required bool) ([]Value, bool) {
	v, ok := r.get(key, required)
	if !ok {
		return nil, false
	}
	items, err := v.List()
	if err != nil {
		r.fail(key, err)
		return nil, false
	}
	return items, true
}

// listStrings converts a list of strings.
func listStrings(v Value) ([]string, error) {
	items, err := v.List()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, err := it.Str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
