package executor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
)

// moveAside converges a diverged replica folder without losing mail. In order, and
// stopping (with nothing deleted) at the first failure:
//  1. the messages of the replica's copy whose GUID the master's folder does not hold
//     are put in a rescue folder (an existing one holding them all is reused), whose
//     bodies are linked by APPLY RESERVE from the replica's copy, never uploaded;
//  2. the rescue folder is read back: every such GUID must be there;
//  3. the master's bodies are staged by RESERVE against the replica's copy, the rescue
//     folder and the user's other folders, uploading only what the replica lacks;
//  4. the folder at the name is re-checked (uniqueid, last_uid, highestmodseq,
//     sync_crc: still what step 1 rescued from) and the replica's copy deleted;
//  5. the master's folder is created at the name with the master's uniqueid.
//
// It returns the number of bodies uploaded, the rescue folder used ("" if none was
// needed) and the number of messages it holds for this folder.
func (x *Executor) moveAside(ctx context.Context, a plan.Action, replicaFolders []plan.Folder) (sent int, rescue string, rescued int, err error) {
	master, err := x.Master.GetFullMailbox(ctx, a.Name)
	if errors.Is(err, csync.ErrMailboxNonexistent) {
		return 0, "", 0, fmt.Errorf("%w: master GET FULLMAILBOX %s: %w", ErrChangedUnderUs, a.Name, err)
	}
	if err != nil {
		return 0, "", 0, fmt.Errorf("master GET FULLMAILBOX: %w", err)
	}
	if master.UniqueID != a.UniqueID || master.IsTombstoneOrIntermediate() {
		return 0, "", 0, fmt.Errorf("%w: master %s now holds %s (type %q)", ErrChangedUnderUs, a.Name, master.UniqueID, master.Type)
	}
	rep, err := x.Replica.GetFullMailbox(ctx, a.Name)
	if err != nil {
		return 0, "", 0, fmt.Errorf("replica GET FULLMAILBOX %s: %w", a.Name, err)
	}
	if rep.UniqueID != a.UniqueID {
		return 0, "", 0, fmt.Errorf("%w: replica %s holds %s, expected %s", ErrChangedUnderUs, a.Name, rep.UniqueID, a.UniqueID)
	}
	onMaster := map[string]bool{}
	for _, r := range master.Records {
		if !r.Expunged() {
			onMaster[r.GUID] = true
		}
	}
	var extra []csync.Record
	for _, r := range rep.Records {
		if !r.Expunged() && !onMaster[r.GUID] {
			extra = append(extra, r)
		}
	}
	if len(extra) > 0 {
		if rescue, err = x.rescue(ctx, a, rep, extra); err != nil {
			return 0, "", 0, err
		}
	}
	// Stage the master's bodies while the replica's copy still exists: RESERVE links
	// the ones it holds, and staged files outlive the folder until RESTART.
	folders := []plan.Folder{{Name: a.Name, Partition: rep.Partition}}
	if rescue != "" {
		folders = append(folders, plan.Folder{Name: rescue, Partition: rep.Partition})
	}
	for _, f := range replicaFolders {
		if f.UniqueID != a.UniqueID && f.Name != a.Name {
			folders = append(folders, f)
		}
	}
	if sent, err = x.upload(ctx, master, nil, folders); err != nil {
		return sent, rescue, len(extra), err
	}
	// The rescue holds what rep held: the copy goes only if it still is rep.
	if err := x.expectAt(ctx, a.Name, a.UniqueID, &plan.FolderMark{LastUID: rep.LastUID, HighestModSeq: rep.HighestModSeq, SyncCRC: rep.SyncCRC}); err != nil {
		return sent, rescue, len(extra), err
	}
	if err := x.Replica.ApplyUnmailbox(ctx, a.Name, false); err != nil {
		return sent, rescue, len(extra), fmt.Errorf("APPLY UNMAILBOX %s: %w", a.Name, err)
	}
	out := *master
	out.Raw = csync.Value{}
	if err := x.Replica.ApplyMailbox(ctx, &out); err != nil {
		// The replica's extra messages are in the rescue folder and the master still
		// holds its own: the next run creates the folder again.
		return sent, rescue, len(extra), fmt.Errorf("APPLY MAILBOX %s (recreate from the master): %w", a.Name, err)
	}
	return sent, rescue, len(extra), nil
}

// rescue returns a replica folder holding every message of extra: an existing rescue
// folder of a.Name that already does, or a new one at a.NewName.
func (x *Executor) rescue(ctx context.Context, a plan.Action, rep *csync.Mailbox, extra []csync.Record) (string, error) {
	for _, name := range a.Rescue {
		mb, err := x.Replica.GetFullMailbox(ctx, name)
		if errors.Is(err, csync.ErrMailboxNonexistent) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("replica GET FULLMAILBOX %s: %w", name, err)
		}
		if len(missingGUIDs(mb, extra)) == 0 {
			return name, nil
		}
	}
	ms, err := x.Replica.GetMailboxes(ctx, []string{a.NewName})
	if err != nil {
		return "", fmt.Errorf("replica GET MAILBOXES %s: %w", a.NewName, err)
	}
	if len(ms) > 0 {
		return "", fmt.Errorf("%w: rescue name %s is taken by %s", ErrChangedUnderUs, a.NewName, ms[0].UniqueID)
	}
	guids := make([]string, 0, len(extra))
	seen := map[string]bool{}
	for _, r := range extra {
		if !seen[r.GUID] {
			seen[r.GUID] = true
			guids = append(guids, r.GUID)
		}
	}
	for start := 0; start < len(guids); start += 8192 {
		chunk := guids[start:min(start+8192, len(guids))]
		missing, err := x.Replica.ApplyReserve(ctx, rep.Partition, []string{a.Name}, chunk)
		if err != nil {
			return "", fmt.Errorf("APPLY RESERVE for the rescue folder: %w", err)
		}
		if len(missing) > 0 {
			return "", fmt.Errorf("APPLY RESERVE from %s: %d bodies of the replica's own messages missing (e.g. %s); nothing moved", a.Name, len(missing), missing[0])
		}
	}
	uid, err := newUniqueID()
	if err != nil {
		return "", err
	}
	now := x.now()
	mb := &csync.Mailbox{UniqueID: uid, Name: a.NewName, Partition: rep.Partition, ACL: rep.ACL, Options: rep.Options,
		UIDValidity: uint32(now.Unix()), LastAppendDate: now.Unix(), HasRecords: true}
	for i, r := range extra {
		n := uint32(i + 1)
		rec := csync.Record{UID: n, ModSeq: uint64(n), LastUpdated: r.LastUpdated, Flags: r.Flags,
			InternalDate: r.InternalDate, Size: r.Size, GUID: r.GUID}
		for _, an := range r.Annotations {
			// The virtual annotations (thread id, savedate, createdmodseq) belong to the
			// old folder's numbering; the rescue folder gets its own.
			if !strings.HasPrefix(an.Entry, "/vendor/cmu/cyrus-imapd/") {
				rec.Annotations = append(rec.Annotations, an)
			}
		}
		mb.Records = append(mb.Records, rec)
	}
	mb.LastUID, mb.HighestModSeq = uint32(len(extra)), uint64(len(extra))
	if err := x.Replica.ApplyMailbox(ctx, mb); err != nil {
		return "", fmt.Errorf("APPLY MAILBOX rescue folder %s: %w", a.NewName, err)
	}
	got, err := x.Replica.GetFullMailbox(ctx, a.NewName)
	if err != nil {
		return "", fmt.Errorf("replica GET FULLMAILBOX %s (rescue re-check): %w", a.NewName, err)
	}
	if got.UniqueID != uid {
		return "", fmt.Errorf("%w: rescue folder %s holds %s, expected %s", ErrChangedUnderUs, a.NewName, got.UniqueID, uid)
	}
	if miss := missingGUIDs(got, extra); len(miss) > 0 {
		return "", fmt.Errorf("rescue folder %s lacks %d of the replica's messages (e.g. %s); nothing deleted", a.NewName, len(miss), miss[0])
	}
	return a.NewName, nil
}

// missingGUIDs lists the GUIDs of want that mb holds in no live record.
func missingGUIDs(mb *csync.Mailbox, want []csync.Record) []string {
	have := map[string]bool{}
	for _, r := range mb.Records {
		if !r.Expunged() {
			have[r.GUID] = true
		}
	}
	var miss []string
	for _, r := range want {
		if !have[r.GUID] {
			miss = append(miss, r.GUID)
			have[r.GUID] = true
		}
	}
	return miss
}

// newUniqueID makes a mailbox uniqueid in the form Cyrus 3.6 uses for new mailboxes:
// 24 lower-case letters and digits.
func newUniqueID() (string, error) {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("uniqueid: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}
