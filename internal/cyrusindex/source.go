package cyrusindex

import (
	"context"
	"fmt"
	"os"
)

// Folder names one mailbox for a Source.
type Folder struct {
	Name      string // internal name, e.g. user.fred.Sent
	UniqueID  string
	Partition string
	Owner     string // the userid that owns it ("" for a shared folder): see Options.Owner
}

// Source reads a mailbox's index: Local reads the disk; a remote reader (the master
// agent) can serve the same reads over the network.
type Source interface {
	ReadIndex(ctx context.Context, f Folder, want Want) (*Index, error)
}

// Local reads mailbox indexes from partition directories on this machine.
type Local struct {
	Partitions map[string]string // partition name → directory
}

// NewLocal finds the partitions in an imapd.conf; at, when not empty, says where some
// of them are seen from here (partition name → directory, e.g. the master's spool
// mounted elsewhere in a pod) and wins over imapd.conf. It fails when none of the
// directories can be seen (the spool is not mounted).
func NewLocal(imapdConf string, at map[string]string) (*Local, error) {
	parts, err := Partitions(imapdConf)
	if err != nil {
		return nil, err
	}
	for name, dir := range at {
		if _, ok := parts[name]; !ok {
			return nil, fmt.Errorf("cyrusindex: %s names no partition %q", imapdConf, name)
		}
		parts[name] = dir
	}
	for name, dir := range parts {
		if _, err := os.Stat(dir); err != nil {
			delete(parts, name)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("cyrusindex: no partition directory of %s is readable here", imapdConf)
	}
	return &Local{Partitions: parts}, nil
}

// ReadIndex reads the folder's index under Cyrus's shared lock.
func (l *Local) ReadIndex(_ context.Context, f Folder, want Want) (*Index, error) {
	root, ok := l.Partitions[f.Partition]
	if !ok {
		return nil, fmt.Errorf("cyrusindex: partition %q: %w", f.Partition, os.ErrNotExist)
	}
	dir, err := Dir(root, f.UniqueID)
	if err != nil {
		return nil, err
	}
	return Read(dir, Options{Want: want, Owner: f.Owner})
}
