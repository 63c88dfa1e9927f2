package main

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Spec describes a one-layer image made of static files.
type Spec struct {
	Files      []File
	Entrypoint string
	Cmd        []string
	User       string // "UID:GID" or "UID"; empty means root
	UserName   string
	Arch       string
	Labels     map[string]string
	Epoch      int64 // seconds; the time of every file and of the image
}

// File is one regular file copied into the image with mode 0755.
type File struct {
	Src, Dst string
}

// Build assembles the image described by spec.
func Build(spec Spec) (v1.Image, error) {
	if !path.IsAbs(spec.Entrypoint) {
		return nil, fmt.Errorf("entrypoint %q must be an absolute path", spec.Entrypoint)
	}
	found := false
	for _, f := range spec.Files {
		if path.Clean(f.Dst) == path.Clean(spec.Entrypoint) {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("entrypoint %s is not among the added files", spec.Entrypoint)
	}
	uid, gid, err := parseUser(spec.User)
	if err != nil {
		return nil, err
	}
	mtime := time.Unix(spec.Epoch, 0).UTC()
	entries := []Entry{{Path: "/tmp", Dir: true, Mode: 0o1777}}
	if uid != 0 {
		entries = append(entries,
			Entry{Path: "/etc", Dir: true, Mode: 0o755},
			Entry{Path: "/etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf(
				"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n",
				spec.UserName, uid, gid, spec.UserName, spec.UserName))},
			Entry{Path: "/etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf(
				"root:x:0:\n%s:x:%d:\n", spec.UserName, gid))},
			Entry{Path: "/home/" + spec.UserName, Dir: true, Mode: 0o755, UID: uid, GID: gid},
		)
	}
	for _, f := range spec.Files {
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Src, err)
		}
		entries = append(entries, Entry{Path: f.Dst, Mode: 0o755, Data: data})
	}
	layerTar, err := LayerTar(entries, mtime)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(layerTar.opener())
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = spec.Arch
	cfg.Created = v1.Time{Time: mtime}
	cfg.Config.Entrypoint = []string{spec.Entrypoint}
	cfg.Config.Cmd = spec.Cmd
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"PATH=/"}
	if uid != 0 {
		cfg.Config.User = spec.User
		cfg.Config.Env = append(cfg.Config.Env, "HOME=/home/"+spec.UserName)
	}
	cfg.Config.Labels = spec.Labels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// parseUser accepts "", "UID" and "UID:GID" with numeric IDs (names would need a
// passwd lookup inside the image, which is what we are writing).
func parseUser(s string) (uid, gid int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	us, gs, hasGID := strings.Cut(s, ":")
	if uid, err = strconv.Atoi(us); err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("user %q: UID must be a non-negative number", s)
	}
	gid = uid
	if hasGID {
		if gid, err = strconv.Atoi(gs); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("user %q: GID must be a non-negative number", s)
		}
	}
	return uid, gid, nil
}

// WriteArchive writes img under every tag as a docker-archive and returns the image ID
// (the config digest), which is what `ctr images ls` and `docker images` show.
func WriteArchive(out string, tags []string, img v1.Image) (string, error) {
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		tag, err := name.NewTag(t)
		if err != nil {
			return "", fmt.Errorf("tag %q: %w", t, err)
		}
		refs[tag] = img
	}
	tmp := out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
