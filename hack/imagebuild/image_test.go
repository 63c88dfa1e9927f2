package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func writeBin(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildNonRootImage(t *testing.T) {
	dir := t.TempDir()
	mgr := writeBin(t, dir, "manager", "#manager")
	rep := writeBin(t, dir, "replicator", "#replicator")
	img, err := Build(Spec{
		Files:      []File{{Src: mgr, Dst: "/manager"}, {Src: rep, Dst: "/replicator"}},
		Entrypoint: "/manager", User: "65532:65532", UserName: "nonroot", Arch: "amd64",
		Labels: map[string]string{"org.opencontainers.image.title": "cyrusrepl"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/manager" {
		t.Errorf("config user=%q entrypoint=%q", cfg.Config.User, cfg.Config.Entrypoint)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		b, _ := io.ReadAll(tr)
		contents[h.Name] = string(b)
	}
	for _, want := range []string{"manager", "replicator", "tmp/", "etc/", "etc/passwd", "etc/group", "home/nonroot/"} {
		if got[want] == nil {
			t.Errorf("layer lacks %s (has %v)", want, keys(got))
		}
	}
	if h := got["manager"]; h != nil && (h.Mode != 0o755 || contents["manager"] != "#manager") {
		t.Errorf("/manager mode %o content %q", h.Mode, contents["manager"])
	}
	if h := got["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("/tmp mode %o", h.Mode)
	}
	if h := got["home/nonroot/"]; h != nil && (h.Uid != 65532 || h.Gid != 65532) {
		t.Errorf("home owned by %d:%d", h.Uid, h.Gid)
	}
	if p := contents["etc/passwd"]; p != "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" {
		t.Errorf("passwd %q", p)
	}
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	p := writeBin(t, dir, "pause", "#pause")
	id := func() string {
		img, err := Build(Spec{Files: []File{{Src: p, Dst: "/pause"}}, Entrypoint: "/pause", Arch: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	if a, b := id(), id(); a != b {
		t.Errorf("two builds of the same input differ: %s vs %s", a, b)
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := writeBin(t, dir, "pause", "#pause")
	img, err := Build(Spec{Files: []File{{Src: p, Dst: "/pause"}}, Entrypoint: "/pause", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pause.tar")
	id, err := WriteArchive(out, []string{"registry.k8s.io/pause:3.10"}, img)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("registry.k8s.io/pause:3.10")
	back, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	backID, err := back.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if backID.String() != id {
		t.Errorf("archive image id %s, want %s", backID, id)
	}
}

func TestBuildRejectsBadSpecs(t *testing.T) {
	dir := t.TempDir()
	p := writeBin(t, dir, "x", "x")
	cases := map[string]Spec{
		"relative entrypoint":    {Files: []File{{Src: p, Dst: "/x"}}, Entrypoint: "x"},
		"entrypoint not added":   {Files: []File{{Src: p, Dst: "/x"}}, Entrypoint: "/y"},
		"non-numeric user":       {Files: []File{{Src: p, Dst: "/x"}}, Entrypoint: "/x", User: "nobody"},
		"missing source":         {Files: []File{{Src: filepath.Join(dir, "nope"), Dst: "/x"}}, Entrypoint: "/x"},
		"file under a file":      {Files: []File{{Src: p, Dst: "/x"}, {Src: p, Dst: "/x/y"}}, Entrypoint: "/x"},
		"same destination twice": {Files: []File{{Src: p, Dst: "/x"}, {Src: p, Dst: "/x"}}, Entrypoint: "/x"},
	}
	for name, spec := range cases {
		if _, err := Build(spec); err == nil {
			t.Errorf("%s: Build succeeded, want an error", name)
		}
	}
}
