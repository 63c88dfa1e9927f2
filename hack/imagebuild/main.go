// Command imagebuild writes a container image archive (docker-archive format, which
// `ctr images import` and `docker load` read) from static binaries, without Docker or a
// registry. The image has one layer: the given files, /tmp, and for a non-root user an
// /etc/passwd and /etc/group naming it. Layers and configs are reproducible: every
// timestamp is fixed, so rebuilding the same binaries gives the same image ID.
//
//	imagebuild -out cyrusrepl.tar -tag cyrusrepl:dev -user 65532:65532 \
//	    -add bin/manager:/manager -add bin/replicator:/replicator -entrypoint /manager
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	var spec Spec
	var tags, adds, labels, cmd listFlag
	out := fs.String("out", "", "archive to write (required)")
	fs.Var(&tags, "tag", "image reference, e.g. cyrusrepl:dev (repeatable, at least one)")
	fs.Var(&adds, "add", "SRC:DST, a file to put into the image at absolute path DST (repeatable)")
	fs.Var(&labels, "label", "KEY=VALUE image label (repeatable)")
	fs.Var(&cmd, "cmd", "default argument (repeatable, in order)")
	fs.StringVar(&spec.Entrypoint, "entrypoint", "", "absolute path of the program to run (required)")
	fs.StringVar(&spec.User, "user", "", "UID:GID to run as; a non-zero UID gets /etc/passwd and /etc/group entries")
	fs.StringVar(&spec.UserName, "user-name", "nonroot", "name of that user in /etc/passwd")
	fs.StringVar(&spec.Arch, "arch", runtime.GOARCH, "image architecture")
	epoch := fs.Int64("epoch", 0, "timestamp of every file and of the image (seconds since 1970; SOURCE_DATE_EPOCH overrides 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *out == "" || len(tags) == 0 {
		return fmt.Errorf("-out and at least one -tag are required")
	}
	for _, a := range adds {
		src, dst, ok := strings.Cut(a, ":")
		if !ok || src == "" || !strings.HasPrefix(dst, "/") {
			return fmt.Errorf("-add %q: want SRC:/ABSOLUTE/DST", a)
		}
		spec.Files = append(spec.Files, File{Src: src, Dst: dst})
	}
	spec.Labels = map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("-label %q: want KEY=VALUE", l)
		}
		spec.Labels[k] = v
	}
	spec.Cmd = cmd
	spec.Epoch = *epoch
	if spec.Epoch == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if _, err := fmt.Sscan(s, &spec.Epoch); err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
			}
		}
	}
	img, err := Build(spec)
	if err != nil {
		return err
	}
	id, err := WriteArchive(*out, tags, img)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", *out, id, strings.Join(tags, " "))
	return nil
}
