package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Entry is one file or directory of a layer.
type Entry struct {
	Path     string // absolute
	Dir      bool
	Mode     int64
	UID, GID int
	Data     []byte
}

// layerBytes is an uncompressed layer tar held in memory (our binaries are small).
type layerBytes []byte

func (b layerBytes) opener() func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// LayerTar writes entries as a tar in a stable order (parents first, then by path), with
// parent directories added as needed and every timestamp set to mtime.
func LayerTar(entries []Entry, mtime time.Time) (layerBytes, error) {
	byPath := map[string]Entry{}
	for _, e := range entries {
		p := path.Clean(e.Path)
		if !path.IsAbs(p) || p == "/" {
			return nil, fmt.Errorf("layer path %q must be absolute and not /", e.Path)
		}
		if old, dup := byPath[p]; dup && !(old.Dir && e.Dir) {
			return nil, fmt.Errorf("layer path %s given twice", p)
		}
		e.Path = p
		byPath[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = Entry{Path: d, Dir: true, Mode: 0o755}
			}
		}
	}
	for p, e := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if !byPath[d].Dir {
				return nil, fmt.Errorf("%s needs %s to be a directory, but it is a file", e.Path, d)
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := byPath[p]
		h := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    e.Mode,
			Uid:     e.UID,
			Gid:     e.GID,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.Dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", p, err)
		}
		if !e.Dir {
			if _, err := tw.Write(e.Data); err != nil {
				return nil, fmt.Errorf("tar data %s: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
