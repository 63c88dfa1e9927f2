package twoskip

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
)

// Ranges reads, in one view of the file at path, the live records whose key starts with
// one of prefixes (an empty prefix: every record), in key order, each record once. It
// finds the start of each range through the skip list's upper levels instead of walking
// every key before it, so the cost follows the records asked for, not the file's size.
// Retries and restart are as for Walk.
func Ranges(path string, prefixes [][]byte, restart func(), fn func(key, val []byte) error) error {
	prefixes = disjoint(prefixes)
	if len(prefixes) == 0 {
		return nil
	}
	return retryInconsistent(path, restart, func() error { return rangesPath(path, prefixes, fn) })
}

// disjoint sorts prefixes and drops those another one covers (a longer prefix of the
// same keys, or a repeat), so the ranges neither overlap nor go back.
func disjoint(prefixes [][]byte) [][]byte {
	ps := slices.Clone(prefixes)
	slices.SortFunc(ps, bytes.Compare)
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && bytes.HasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func rangesPath(path string, prefixes [][]byte, fn func(key, val []byte) error) error {
	f, err := os.Open(path) // read-only, no lock: writers never wait for us
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return RangesReader(f, st.Size(), prefixes, fn)
}

// RangesReader is Ranges over one read of r (size bytes long), with no retry: an
// inconsistency is returned as an error wrapping ErrInconsistent.
func RangesReader(r io.ReaderAt, size int64, prefixes [][]byte, fn func(key, val []byte) error) error {
	return rangesReader(r, size, true, prefixes, fn)
}

// rangesReader is RangesReader; checkCRC false is for fuzzing only (see walkReader).
func rangesReader(r io.ReaderAt, size int64, checkCRC bool, prefixes [][]byte, fn func(key, val []byte) error) error {
	w, dummy, err := open(r, size, checkCRC)
	if err != nil {
		return err
	}
	for _, p := range disjoint(prefixes) {
		from, err := w.seek(dummy, p)
		if err != nil {
			return err
		}
		if err := w.walkFrom(from, PrefixPicker(p), fn); err != nil {
			return err
		}
	}
	return nil
}

// seek returns the last record on the key list found with a key below key (the dummy
// when none is), going down the skip list's levels from the dummy's highest. A level
// pointer is only followed to a committed live record whose key is below key: a
// pointer a writer has moved past the committed size, or to anything else, sends the
// search a level down, and level 0 (read as Walk reads it) has the last word, so the
// walk from the result misses no key at or after key.
func (w *walker) seek(dummy *record, key []byte) (*record, error) {
	x := dummy
	var xKey []byte // x's key (the dummy's: none)
	steps := uint64(0)
	for lvl := x.level - 1; lvl >= 1; lvl-- {
		for lvl < x.level { // x has a pointer at this level
			// Each step goes to a strictly greater key (checked below), so a level
			// cannot loop; the bound is a second guard against a damaged file.
			if steps++; steps > w.end/minRecordLen {
				return nil, fmt.Errorf("%w: more steps down the skip list than records fit in the file", ErrInconsistent)
			}
			next := x.next[lvl+1]
			if next == 0 || next >= w.end {
				break
			}
			r, err := w.record(next)
			if err != nil {
				return nil, err
			}
			if r.typ != typeRecord {
				break
			}
			k, err := w.br.read(r.keyOff, r.keyLen)
			if err != nil {
				return nil, err
			}
			if xKey != nil && bytes.Compare(k, xKey) <= 0 {
				return nil, fmt.Errorf("%w: key at %d out of order on level %d", ErrInconsistent, r.off, lvl)
			}
			if bytes.Compare(k, key) >= 0 {
				break
			}
			x, xKey = r, append(xKey[:0], k...)
		}
	}
	return x, nil
}
