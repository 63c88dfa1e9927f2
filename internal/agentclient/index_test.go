package agentclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
)

// TestReadIndexRefusals: the agent's refusals come back as the local reader's error
// kinds (errors.Is, cyrusindex.Reason), and malformed requests as a 400 of its own, for
// index files written by the test (no Cyrus: the real-pair tests are in cmd/replicator
// and cmd/agent).
func TestReadIndexRefusals(t *testing.T) {
	f := newFixture(t, time.Second)
	spool := filepath.Join(f.dir, "spool")
	conf, err := os.OpenFile(filepath.Join(f.dir, "imapd.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("partition-default: " + spool + "\n"); err != nil {
		t.Fatal(err)
	}
	conf.Close()
	const id = "abcdefgh12345678"
	writeIndex := func(b []byte) {
		dir, _ := cyrusindex.Dir(spool, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, cyrusindex.IndexFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	header := func(minor uint32) []byte {
		b := make([]byte, 160)
		binary.BigEndian.PutUint32(b[8:], minor)
		binary.BigEndian.PutUint32(b[156:], 0xdeadbeef) // not the CRC
		return b
	}
	folder := cyrusindex.Folder{Name: "user.fred", UniqueID: id, Partition: "default", Owner: "fred"}
	read := func(f2 cyrusindex.Folder) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		idx, err := f.client.ReadIndex(ctx, f2, cyrusindex.Want{})
		if err == nil {
			t.Fatalf("%+v: read %+v, want a refusal", f2, idx)
		}
		return err
	}

	if err := read(folder); !errors.Is(err, fs.ErrNotExist) || cyrusindex.Reason(err) != "missing" {
		t.Errorf("no folder: %v (reason %q), want missing", err, cyrusindex.Reason(err))
	}
	writeIndex(header(16))
	if err := read(folder); !errors.Is(err, cyrusindex.ErrVersion) || cyrusindex.Reason(err) != "version" {
		t.Errorf("version 16: %v, want version", err)
	}
	writeIndex(header(17))
	if err := read(folder); !errors.Is(err, cyrusindex.ErrChecksum) || cyrusindex.Reason(err) != "checksum" {
		t.Errorf("bad header CRC: %v, want checksum", err)
	}
	for _, bad := range []cyrusindex.Folder{
		{Name: "user.fred", UniqueID: id, Partition: "other"},
		{Name: "user.fred", UniqueID: "../" + id, Partition: "default"},
		{Name: "user.fred", UniqueID: "short", Partition: "default"},
	} {
		err := read(bad)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || cyrusindex.Reason(err) != "io" {
			t.Errorf("%+v: %v, want 400 (reason io)", bad, err)
		}
	}
}

// TestDecodeIndex: an answer is exactly the records its head announces.
func TestDecodeIndex(t *testing.T) {
	head := `{"header":{"numRecords":3,"lastUid":3},"mailbox":{"name":"user.fred"},"scanned":3,"records":2}` + "\n"
	rec := func(uid string) string {
		return `{"u":` + uid + `,"g":"0123456789abcdef0123456789abcdef01234567","ms":5,"f":["\\Seen"],"a":[{"e":"/comment","m":5,"v":"x"}]}` + "\n"
	}
	idx, err := decodeIndex(strings.NewReader(head + rec("2") + rec("3")))
	if err != nil || len(idx.Records) != 2 || idx.Records[1].UID != 3 || idx.Records[0].GUIDHex() != "0123456789abcdef0123456789abcdef01234567" ||
		idx.Records[0].Annotations[0].Value != "x" || idx.Scanned != 3 || idx.Mailbox.Name != "user.fred" {
		t.Fatalf("decode: %+v, %v", idx, err)
	}
	for name, body := range map[string]string{
		"cut short":       head + rec("2"),
		"more":            head + rec("2") + rec("3") + rec("4"),
		"no head":         "",
		"bad GUID":        head + rec("2") + strings.Replace(rec("3"), "0123", "zz", 1),
		"more than index": strings.Replace(head, `"records":2`, `"records":4`, 1) + rec("1") + rec("2") + rec("3") + rec("4"),
	} {
		if _, err := decodeIndex(strings.NewReader(body)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
