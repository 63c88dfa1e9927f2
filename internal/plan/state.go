package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// Folder is one mailbox at one end, as GET USER / GET MAILBOXES report it (plus, on the
// master, its name history from mailboxes.db when the replicator can read it).
type Folder struct {
	UniqueID      string
	Name          string   // internal name, e.g. user.alice.Sent or DELETED.user.alice.Sent.6B0B8E30
	History       []string // former internal names, newest first, where known
	Type          string   // MBOXTYPE letters; "" for a plain email folder
	UIDValidity   uint32
	LastUID       uint32
	HighestModSeq uint64
	SyncCRC       uint32
	SyncCRCAnnot  uint32
	Partition     string
	ACL           string
	Options       string
	QuotaRoot     string
	CreatedModSeq uint64
	FolderModSeq  uint64
	// Annotations is a canonical rendering of the mailbox-level annotations (entry,
	// userid, value), so that two folders can be compared without decoding them.
	Annotations string
	// Records is the number of records when known (FULLMAILBOX); informational.
	Records int
}

// User returns the userid owning the folder.
func (f *Folder) User() string { return mboxname.UserOf(f.Name) }

// Intermediate reports whether the folder is an intermediate (a name that only exists
// because it has children).
func (f *Folder) Intermediate() bool { return strings.ContainsRune(f.Type, 'i') }

// ContentDiff names the first content field that differs between master m and replica r,
// or "" when the replica is up to date. Names are compared elsewhere.
func ContentDiff(m, r *Folder) string {
	switch {
	case m.Type != r.Type:
		return fmt.Sprintf("type %q vs %q", m.Type, r.Type)
	case m.Intermediate():
		return ""
	case m.UIDValidity != r.UIDValidity:
		return fmt.Sprintf("uidvalidity %d vs %d", m.UIDValidity, r.UIDValidity)
	case m.LastUID != r.LastUID:
		return fmt.Sprintf("last_uid %d vs %d", m.LastUID, r.LastUID)
	case m.HighestModSeq != r.HighestModSeq:
		return fmt.Sprintf("highestmodseq %d vs %d", m.HighestModSeq, r.HighestModSeq)
	case m.SyncCRC != r.SyncCRC:
		return fmt.Sprintf("sync_crc %d vs %d", m.SyncCRC, r.SyncCRC)
	case m.SyncCRCAnnot != r.SyncCRCAnnot:
		return fmt.Sprintf("sync_crc_annot %d vs %d", m.SyncCRCAnnot, r.SyncCRCAnnot)
	case m.ACL != r.ACL:
		return "acl differs"
	case m.Options != r.Options:
		return fmt.Sprintf("options %q vs %q", m.Options, r.Options)
	case m.Annotations != r.Annotations:
		return "mailbox annotations differ"
	case m.Partition != r.Partition && r.Partition != "":
		return fmt.Sprintf("partition %q vs %q", m.Partition, r.Partition)
	}
	return ""
}

// Quota is one quota root with its limits ("STORAGE", "MESSAGE", … → limit; absent =
// unlimited). Usage is not replicated: each end computes its own.
type Quota struct {
	Root   string
	Limits map[string]uint64
}

func (q Quota) key() string {
	ks := make([]string, 0, len(q.Limits))
	for k, v := range q.Limits {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return q.Root + " " + strings.Join(ks, ",")
}

// Seen is one seen.db entry of a user for one mailbox uniqueid.
type Seen struct {
	UniqueID   string
	LastRead   int64
	LastUID    uint32
	LastChange int64
	SeenUIDs   string
}

// SieveScript is one sieve script of a user.
type SieveScript struct {
	Name       string
	LastUpdate int64
	Active     bool
	// Digest identifies the content (e.g. hex SHA-1) when known; "" compares by LastUpdate only.
	Digest string
}

// Meta is what a user has besides folders: quota roots, seen state, subscriptions, sieve.
type Meta struct {
	Quotas []Quota
	Seen   []Seen
	Subs   []string // internal names
	Sieve  []SieveScript
}

// Snapshot is one end's view of a set of users (a batch).
type Snapshot struct {
	Folders []Folder
	Meta    map[string]*Meta // by userid; nil entries mean "no meta known"
}

// ByUID indexes folders by uniqueid. Duplicate uniqueids (possible on a damaged 3.0
// replica) keep the first and report the rest.
func ByUID(fs []Folder) (map[string]*Folder, []*Folder) {
	m := make(map[string]*Folder, len(fs))
	var dups []*Folder
	for i := range fs {
		f := &fs[i]
		if _, ok := m[f.UniqueID]; ok {
			dups = append(dups, f)
			continue
		}
		m[f.UniqueID] = f
	}
	return m, dups
}

// FolderMark is what tells one state of a folder from a later one.
type FolderMark struct {
	LastUID       uint32 `json:"lastUid"`
	HighestModSeq uint64 `json:"highestModseq"`
	SyncCRC       uint32 `json:"syncCrc"`
}

// MarkOf is a folder's mark.
func MarkOf(f *Folder) FolderMark {
	return FolderMark{LastUID: f.LastUID, HighestModSeq: f.HighestModSeq, SyncCRC: f.SyncCRC}
}
