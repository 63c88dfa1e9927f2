package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSeedResumesAndCompletes(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	s, err := OpenSeed(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Record() != nil {
		t.Fatal("a new state has a seed record")
	}
	if err := s.Begin(t0, "new state"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "weird\nname"} {
		if err := s.MarkDone(u); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// A crash mid-append leaves a torn last line: ignored (that user is done again).
	f, err := os.OpenFile(filepath.Join(dir, "seed", "done"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`"caro`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s, err = OpenSeed(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Record()
	if r == nil || !r.Started.Equal(t0) || r.Completed != nil || r.Reason != "new state" {
		t.Fatalf("record after restart: %+v", r)
	}
	if !s.Done("alice") || !s.Done("bob") || !s.Done("weird\nname") || s.Done("caro") || s.Done("dave") {
		t.Fatal("users done after restart are not alice, bob and weird\\nname")
	}
	// A second Begin (the resumed pass) keeps the first start and reason.
	if err := s.Begin(t0.Add(time.Hour), "other"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDone("caro"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t0.Add(2*time.Hour), 4, 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "seed", "done")); !os.IsNotExist(err) {
		t.Fatalf("the list of users done is kept after completion: %v", err)
	}
	s, err = OpenSeed(dir)
	if err != nil {
		t.Fatal(err)
	}
	r = s.Record()
	if r == nil || r.Completed == nil || !r.Completed.Equal(t0.Add(2*time.Hour)) || !r.Started.Equal(t0) || r.Users != 4 || r.Failed != 1 || r.Skipped || r.Reason != "new state" {
		t.Fatalf("completed record: %+v", r)
	}
}

func TestSeedSkipAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenSeed(dir)
	if err := s.Skip(time.Now(), "replica holds users"); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSeed(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r := s2.Record(); r == nil || !r.Skipped || r.Completed == nil {
		t.Fatalf("skipped record: %+v", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "seed", "seed.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSeed(dir); err == nil {
		t.Fatal("a corrupt seed record opened without error")
	}
}
