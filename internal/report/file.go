package report

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// FileSink writes the summary as JSON to a file, atomically (temp file, fsync, rename),
// so a reader never sees a torn report.
type FileSink struct{ Path string }

var _ Sink = FileSink{}

// Publish implements Sink.
func (f FileSink) Publish(_ context.Context, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write report: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsync report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close report: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("rename report: %w", err)
	}
	return nil
}

// Sinks publishes to several sinks; it returns the first error after trying them all.
type Sinks []Sink

// Publish implements Sink.
func (ss Sinks) Publish(ctx context.Context, s *Summary) error {
	var first error
	for _, k := range ss {
		if err := k.Publish(ctx, s); err != nil && first == nil {
			first = err
		}
	}
	return first
}
