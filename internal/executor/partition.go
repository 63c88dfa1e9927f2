package executor

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// A master partition the replica lacks. Cyrus 3.6's sync_server does not say so: an
// APPLY MAILBOX naming an unknown partition gets "NO Unknown error", an APPLY MESSAGE
// staging a body there kills the sync_server process with an assertion ("Fatal error:
// … dlist.c … base != NULL"). So the executor names the partition itself when the
// replica refuses a folder the master keeps on a partition the replica is not known to
// have (no folder of it was seen there, none was created there). Since the same answers
// come for other failures (a full disk), the error says "most likely". The user fails, with
// an error naming the partition, and is retried; nothing is deleted for it.

// PartitionError is the replica refusing a folder whose master partition it seems to lack.
type PartitionError struct {
	Partition string
	Folder    string
	User      string
	Err       error // the replica's answer
}

func (e *PartitionError) Error() string {
	return fmt.Sprintf("the replica refused folder %s, which the master keeps on partition %q, and holds no folder on that partition: it most likely lacks partition-%s in its imapd.conf (Cyrus 3.6 answers a missing partition, like other failures, with \"NO Unknown error\" or a fatal error; replica said: %v)",
		e.Folder, e.Partition, e.Partition, e.Err)
}

func (e *PartitionError) Unwrap() error { return e.Err }

// PartitionSet is the set of partitions the replica is known to have, shared by the
// executors of one process. The zero value is not usable; nil is (it knows nothing).
type PartitionSet struct {
	mu    sync.Mutex
	known map[string]bool
}

// NewPartitionSet returns an empty set.
func NewPartitionSet() *PartitionSet { return &PartitionSet{known: map[string]bool{}} }

func (s *PartitionSet) add(parts ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		if p != "" {
			s.known[p] = true
		}
	}
}

func (s *PartitionSet) has(p string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[p]
}

// Known lists the partitions known to exist on the replica.
func (s *PartitionSet) Known() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.known))
	for p := range s.known {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// notePartition learns the replica's partitions from the folders it accepted and, on a
// refusal, from the batch's replica folders, and turns the replica's refusal of a folder
// on a partition it is not known to have into a PartitionError.
func (x *Executor) notePartition(a plan.Action, replica []plan.Folder, err error) error {
	if a.Op != plan.OpCreate && a.Op != plan.OpUpdate || a.Master == nil || a.Master.Partition == "" {
		return err
	}
	p := a.Master.Partition
	if err == nil {
		x.ReplicaPartitions.add(p)
		return nil
	}
	if !replicaRefused(err) || x.ReplicaPartitions.has(p) {
		return err
	}
	known := false
	for _, f := range replica {
		x.ReplicaPartitions.add(f.Partition)
		known = known || f.Partition == p
	}
	if known {
		return err
	}
	return &PartitionError{Partition: p, Folder: a.Master.Name, User: a.User, Err: err}
}

// replicaRefused: the replica answered NO without an IMAP_ code, or died with a fatal
// error: the two answers of Cyrus 3.6 to an unknown partition.
func replicaRefused(err error) bool {
	var se *csync.ServerError
	if !errors.As(err, &se) {
		return false
	}
	return se.Status == "FATAL" || se.Status == "NO" && se.Code == ""
}
