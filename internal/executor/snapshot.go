package executor

import (
	"context"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// MasterReader is what the executor needs from the master: GET only. *csync.MasterConn
// implements it, and has no APPLY by construction.
type MasterReader interface {
	GetUser(ctx context.Context, userid string) (*csync.UserState, error)
	GetMailboxes(ctx context.Context, names []string) ([]csync.Mailbox, error)
	GetUniqueIDs(ctx context.Context, ids []string) ([]csync.Mailbox, error)
	GetFullMailbox(ctx context.Context, name string) (*csync.Mailbox, error)
	Fetch(ctx context.Context, req csync.FetchRequest) (*csync.FetchBody, error)
	FetchSieve(ctx context.Context, userid, filename string) (*csync.Sieve, error)
	Restart(ctx context.Context) error
}

// ReplicaWriter is what the executor needs from the replica. *csync.ReplicaConn
// implements it.
type ReplicaWriter interface {
	GetUser(ctx context.Context, userid string) (*csync.UserState, error)
	GetMailboxes(ctx context.Context, names []string) ([]csync.Mailbox, error)
	GetUniqueIDs(ctx context.Context, ids []string) ([]csync.Mailbox, error)
	GetFullMailbox(ctx context.Context, name string) (*csync.Mailbox, error)
	Restart(ctx context.Context) error
	ApplyReserve(ctx context.Context, partition string, mboxnames, guids []string) ([]string, error)
	ApplyMessage(ctx context.Context, msgs iter.Seq2[csync.Message, error]) (int, error)
	ApplyMailbox(ctx context.Context, m *csync.Mailbox) error
	ApplyUnmailbox(ctx context.Context, name string, isLocal bool) error
	ApplyRename(ctx context.Context, r csync.Rename, isLocal bool) error
	ApplyQuota(ctx context.Context, q *csync.Quota) error
	ApplyUnquota(ctx context.Context, root string) error
	ApplySeen(ctx context.Context, userid string, s *csync.Seen) error
	ApplySub(ctx context.Context, userid, mboxname string) error
	ApplyUnsub(ctx context.Context, userid, mboxname string) error
	ApplySieve(ctx context.Context, s *csync.Sieve) error
	ApplyUnsieve(ctx context.Context, userid, filename string) error
	ApplyActivateSieve(ctx context.Context, userid, filename string) error
	ApplyUnactivateSieve(ctx context.Context, userid string) error
}

var (
	_ MasterReader  = (*csync.MasterConn)(nil)
	_ ReplicaWriter = (*csync.ReplicaConn)(nil)
)

// FolderFromMailbox converts a csync MAILBOX record.
func FolderFromMailbox(m *csync.Mailbox) plan.Folder {
	return plan.Folder{
		UniqueID: m.UniqueID, Name: m.Name, Type: m.Type,
		UIDValidity: m.UIDValidity, LastUID: m.LastUID, HighestModSeq: m.HighestModSeq,
		SyncCRC: m.SyncCRC, SyncCRCAnnot: m.SyncCRCAnnot,
		Partition: m.Partition, ACL: m.ACL, Options: m.Options, QuotaRoot: m.QuotaRoot,
		CreatedModSeq: m.CreatedModSeq, FolderModSeq: m.FolderModSeq,
		Annotations: RenderAnnotations(m.Annotations), Records: len(m.Records),
	}
}

// RenderAnnotations renders mailbox-level annotations canonically (Folder.Annotations).
func RenderAnnotations(as []csync.Annotation) string {
	if len(as) == 0 {
		return ""
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = fmt.Sprintf("%q %q %q", a.Entry, a.UserID, a.Value)
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

// userSide is one user's state at one end, as fetched.
type userSide struct {
	folders []plan.Folder
	meta    *plan.Meta
}

// sideFromUserState converts GET USER. A user without any mailbox has no meta: the
// master does not know the user (3.6 sync_client skips such users too).
func sideFromUserState(u *csync.UserState) userSide {
	var s userSide
	for i := range u.Mailboxes {
		s.folders = append(s.folders, FolderFromMailbox(&u.Mailboxes[i]))
	}
	if len(u.Mailboxes) == 0 {
		return s
	}
	m := &plan.Meta{Subs: append([]string(nil), u.Subscriptions...)}
	for _, q := range u.Quotas {
		m.Quotas = append(m.Quotas, plan.Quota{Root: q.Root, Limits: q.Resources})
	}
	for _, x := range u.Seen {
		m.Seen = append(m.Seen, plan.Seen{UniqueID: x.UniqueID, LastRead: x.LastRead, LastUID: x.LastUID, LastChange: x.LastChange, SeenUIDs: x.SeenUIDs})
	}
	// Without SIEVE-MAILBOX the server lists NAME.script (the source, what APPLY SIEVE
	// stores) and NAME.bc (compiled; the active one is flagged there).
	active := map[string]bool{}
	for _, x := range u.Sieve {
		if base, ok := strings.CutSuffix(x.Filename, ".bc"); ok && x.Active {
			active[base+".script"] = true
		}
	}
	for _, x := range u.Sieve {
		if strings.HasSuffix(x.Filename, ".script") {
			m.Sieve = append(m.Sieve, plan.SieveScript{Name: x.Filename, LastUpdate: x.LastUpdate, Active: x.Active || active[x.Filename], Digest: x.GUID})
		}
	}
	s.meta = m
	return s
}

// mailboxNames lists the names of the mailboxes of a GET USER answer.
func mailboxNames(u *csync.UserState) []string {
	out := make([]string, len(u.Mailboxes))
	for i, m := range u.Mailboxes {
		out[i] = m.Name
	}
	return out
}
