package twoskip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fixtures were written by Cyrus 3.6.1's own cyr_dbtool (`-n small.db twoskip
// batch`: 40 SETs, a replaced value, a delete, a delete then re-set, a 3,000-byte
// value); small.show is its `twoskip show` of the file. damaged.db is a copy on which
// `cyr_dbtool … damage` began a transaction storing INVALID and died: the header is
// dirty and a record lies past current_size.

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func all([]byte) Action { return Take }

func dump(b []byte) (string, error) {
	var out bytes.Buffer
	err := WalkReader(bytes.NewReader(b), int64(len(b)), all, func(k, v []byte) error {
		out.Write(k)
		out.WriteByte('\t')
		out.Write(v)
		out.WriteByte('\n')
		return nil
	})
	return out.String(), err
}

func TestCyrusWrittenFile(t *testing.T) {
	got, err := dump(readFixture(t, "small.db"))
	if err != nil {
		t.Fatal(err)
	}
	if want := string(readFixture(t, "small.show")); got != want {
		t.Fatalf("dump differs from cyr_dbtool show:\n%s\nwant\n%s", got, want)
	}
}

func TestUncommittedTailIgnored(t *testing.T) {
	b := readFixture(t, "damaged.db")
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Flags&1 == 0 || h.CurrentSize >= uint64(len(b)) || !bytes.Contains(b[h.CurrentSize:], []byte("INVALIDCRASHME")) {
		t.Fatalf("fixture is not a dirty file with an uncommitted record: %+v, %d bytes", h, len(b))
	}
	got, err := dump(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := string(readFixture(t, "small.show")); got != want {
		t.Fatalf("dump of the damaged file differs from the committed content:\n%s", got)
	}
}

func TestGetAndForEach(t *testing.T) {
	path := filepath.Join("testdata", "small.db")
	for key, want := range map[string]string{"key005": "replaced five", "key020": "back again", "key040": "value 40", "long": strings.Repeat("x", 3000)} {
		got, ok, err := Get(path, []byte(key))
		if err != nil || !ok || string(got) != want {
			t.Errorf("Get %s = %.20q %v %v, want %.20q", key, got, ok, err, want)
		}
	}
	for _, key := range []string{"key007", "key0", "key0400", "a", "zzz", ""} {
		if got, ok, err := Get(path, []byte(key)); ok || err != nil {
			t.Errorf("Get %q = %q %v %v, want absent", key, got, ok, err)
		}
	}
	var keys []string
	err := ForEach(path, []byte("key01"), func() { keys = nil }, func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	if err != nil || strings.Join(keys, " ") != "key010 key011 key012 key013 key014 key015 key016 key017 key018 key019" {
		t.Fatalf("ForEach key01: %v %v", keys, err)
	}
	stop := errors.New("enough")
	n := 0
	if err := ForEach(path, nil, nil, func([]byte, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("callback error: %v after %d calls", err, n)
	}
}

// setHeader rewrites a header field and its CRC, as a writer would.
func setHeader(b []byte, off int, v uint64) {
	binary.BigEndian.PutUint64(b[off:], v)
	binary.BigEndian.PutUint32(b[60:], crc32.ChecksumIEEE(b[:60]))
}

func TestBadFiles(t *testing.T) {
	good := readFixture(t, "small.db")
	h, _ := ParseHeader(good)
	keyAt := bytes.Index(good, []byte("key013"))
	valAt := bytes.Index(good, []byte("value 13"))
	cases := map[string]func(b []byte) []byte{
		"empty":            func(b []byte) []byte { return nil },
		"bad magic":        func(b []byte) []byte { b[3] ^= 1; return b },
		"header CRC":       func(b []byte) []byte { b[40] ^= 1; return b },
		"future version":   func(b []byte) []byte { b[23] = 2; setHeader(b, 24, h.Generation); return b },
		"tail CRC (value)": func(b []byte) []byte { b[valAt+6] = '9'; return b },
		"head CRC":         func(b []byte) []byte { b[keyAt-8] ^= 0x40; return b },
		"size past file":   func(b []byte) []byte { setHeader(b, 48, uint64(len(b))+8); return b },
		"pointer past end": func(b []byte) []byte { setHeader(b, 48, h.CurrentSize-64); return b },
		"tiny size":        func(b []byte) []byte { setHeader(b, 48, 80); return b },
		"not the dummy":    func(b []byte) []byte { b[64] = '+'; return b },
	}
	for n := 1; n < len(good); n += 97 {
		cases["truncated to "+strconv.Itoa(n)] = func(b []byte) []byte { return b[:n] }
	}
	for name, corrupt := range cases {
		b := corrupt(bytes.Clone(good))
		_, err := dump(b)
		if !errors.Is(err, ErrInconsistent) {
			t.Errorf("%s: error %v, want ErrInconsistent", name, err)
		}
	}
}

func TestPathRetriesThenFails(t *testing.T) {
	b := readFixture(t, "small.db")
	b[bytes.Index(b, []byte("key013"))+4] = '9'
	path := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	restarts := 0
	err := ForEach(path, nil, func() { restarts++ }, func([]byte, []byte) error { return nil })
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "inconsistent every time") || restarts != Retries {
		t.Fatalf("error %v after %d restarts", err, restarts)
	}
	if _, _, err := Get(filepath.Join(t.TempDir(), "missing.db"), []byte("k")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestRangesMatchWalk: for many sets of prefixes (every key, prefixes of keys, absent
// keys, overlapping and repeated prefixes, the empty prefix), Ranges hands over exactly
// the records a walk of the whole file filtered by those prefixes finds, in key order,
// each once, on a Cyrus-written file and on one with an uncommitted tail.
func TestRangesMatchWalk(t *testing.T) {
	for _, fixture := range []string{"small.db", "damaged.db"} {
		b := readFixture(t, fixture)
		var keys []string
		if err := WalkReader(bytes.NewReader(b), int64(len(b)), all, func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sets := [][]string{{""}, {"key0"}, {"key01", "key03"}, {"key03", "key01", "key01"}, {"key", "key02"},
			{"a", "zzz", "key0400"}, {"long", "key040"}, {"key005", "key0", "key039"}}
		for _, k := range keys {
			sets = append(sets, []string{k}, []string{k[:len(k)-1]}, []string{k + "\x00"})
		}
		for _, set := range sets {
			var prefixes [][]byte
			for _, p := range set {
				prefixes = append(prefixes, []byte(p))
			}
			var want []string
			for _, k := range keys {
				for _, p := range set {
					if strings.HasPrefix(k, p) {
						want = append(want, k)
						break
					}
				}
			}
			var got []string
			err := RangesReader(bytes.NewReader(b), int64(len(b)), prefixes, func(k, _ []byte) error {
				got = append(got, string(k))
				return nil
			})
			if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("%s: Ranges %q = %q %v, want %q", fixture, set, got, err, want)
			}
		}
	}
}
