package twoskip

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzWalkReader: arbitrary bytes give a walk that ends, with records in strictly
// increasing key order, or an error wrapping ErrInconsistent; never a panic or a hang.
// The seed corpus (testdata/fuzz/FuzzWalkReader) holds Cyrus-written files, clean and
// with an uncommitted tail, and cut or corrupted copies.
func FuzzWalkReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, checkCRC := range []bool{true, false} {
			walkOnce(t, data, checkCRC)
			rangesOnce(t, data, checkCRC)
		}
	})
}

// walkOnce walks data; without the CRC checks, mutated pointers and lengths reach
// the code that follows them.
func walkOnce(t *testing.T, data []byte, checkCRC bool) {
	var prev []byte
	n := 0
	err := walkReader(bytes.NewReader(data), int64(len(data)), checkCRC, func(k []byte) Action {
		if n%3 == 2 {
			return Skip
		}
		return Take
	}, func(k, v []byte) error {
		if n > 0 && bytes.Compare(prev, k) >= 0 {
			t.Fatalf("key %q after %q", k, prev)
		}
		if len(k)+len(v) > len(data) {
			t.Fatalf("record of %d bytes from a %d-byte file", len(k)+len(v), len(data))
		}
		prev = append(prev[:0], k...)
		n++
		return nil
	})
	if err != nil && !errors.Is(err, ErrInconsistent) {
		t.Fatalf("error %v does not wrap ErrInconsistent", err)
	}
}

// rangesOnce reads data by ranges found through the skip list, with the same demands
// as walkOnce: keys in strictly increasing order, records inside the file, or an error
// wrapping ErrInconsistent.
func rangesOnce(t *testing.T, data []byte, checkCRC bool) {
	var prev []byte
	n := 0
	prefixes := [][]byte{[]byte("key01"), []byte("key3"), []byte("long"), {0xff}}
	err := rangesReader(bytes.NewReader(data), int64(len(data)), checkCRC, prefixes, func(k, v []byte) error {
		if n > 0 && bytes.Compare(prev, k) >= 0 {
			t.Fatalf("key %q after %q", k, prev)
		}
		if len(k)+len(v) > len(data) {
			t.Fatalf("record of %d bytes from a %d-byte file", len(k)+len(v), len(data))
		}
		prev = append(prev[:0], k...)
		n++
		return nil
	})
	if err != nil && !errors.Is(err, ErrInconsistent) {
		t.Fatalf("error %v does not wrap ErrInconsistent", err)
	}
}
