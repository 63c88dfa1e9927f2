package mboxname

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// deletedPrefix is the first component of the master's delayed-delete namespace
// (imapd.conf deletedprefix, Cyrus's default "DELETED"). The replicator sets it once,
// from the master's imapd.conf or its flag, before any work.
var deletedPrefix atomic.Pointer[string]

// DeletedPrefix returns the deleted namespace's prefix in use.
func DeletedPrefix() string {
	if p := deletedPrefix.Load(); p != nil {
		return *p
	}
	return DefaultMasterSettings.DeletedPrefix
}

// SetDeletedPrefix sets the master's deletedprefix for every name parsed from now on.
func SetDeletedPrefix(prefix string) error {
	if err := checkDeletedPrefix(prefix); err != nil {
		return err
	}
	deletedPrefix.Store(&prefix)
	return nil
}

// checkDeletedPrefix refuses a prefix that cannot be one component of an internal name.
func checkDeletedPrefix(p string) error {
	if p == "" || strings.ContainsAny(p, ".!^/ \t") || p == "user" {
		return fmt.Errorf("deletedprefix %q: want one name component (not \"user\", no '.', '!', '^', '/' or space)", p)
	}
	return nil
}

// Name is a parsed Cyrus internal mailbox name:
// [<domain>!][DELETED.]user.<localpart>[.<box>…][.<HEXTIME>].
type Name struct {
	Domain  string // "" without virtual domains
	Deleted bool   // in the DELETED.* namespace
	User    string // userid (localpart with '^' turned back into '.', plus @domain); "" for shared folders
	// Rest is the path below the user's INBOX, separator '.', "" for the INBOX itself.
	// For a deleted name it still carries the trailing hex timestamp.
	Rest string
}

// ParseName parses an internal mailbox name. Shared (non-user) folders return User "".
func ParseName(internal string) Name {
	var n Name
	s := internal
	if i := strings.IndexByte(s, '!'); i >= 0 {
		n.Domain, s = s[:i], s[i+1:]
	}
	if prefix := DeletedPrefix() + "."; strings.HasPrefix(s, prefix) {
		n.Deleted = true
		s = s[len(prefix):]
	}
	if !strings.HasPrefix(s, "user.") {
		n.Rest = s
		return n
	}
	s = s[len("user."):]
	local, rest, _ := strings.Cut(s, ".")
	n.User = strings.ReplaceAll(local, "^", ".")
	if n.Domain != "" {
		n.User += "@" + n.Domain
	}
	n.Rest = rest
	return n
}

// UserOf returns the userid that owns an internal mailbox name ("" for shared folders).
// A DELETED.* name belongs to the user it was deleted from.
func UserOf(internal string) string { return ParseName(internal).User }

// IsDeletedName reports whether an internal name is in the DELETED.* namespace.
func IsDeletedName(internal string) bool { return ParseName(internal).Deleted }

// UserRoot returns the internal name of a user's INBOX: "user.alice", "example.com!user.bob".
func UserRoot(userid string) string {
	local, domain, hasDomain := strings.Cut(userid, "@")
	root := "user." + strings.ReplaceAll(local, ".", "^")
	if hasDomain {
		return domain + "!" + root
	}
	return root
}

// DeletedRoot is the internal name under which a user's delayed-deleted folders live:
// DELETED.user.alice (…, then .<folder>.<HEXTIME>).
func DeletedRoot(userid string) string {
	root := UserRoot(userid)
	if domain, rest, ok := strings.Cut(root, "!"); ok {
		return domain + "!" + DeletedPrefix() + "." + rest
	}
	return DeletedPrefix() + "." + root
}

// FolderName returns the internal name of folder rel ("INBOX", "Sent", "Work.Old") of a user.
func FolderName(userid, rel string) string {
	if rel == "" || rel == "INBOX" {
		return UserRoot(userid)
	}
	return UserRoot(userid) + "." + rel
}

// DBNameToInternal turns a mailboxes.db name into the internal name used on the wire.
// mailboxes.db keeps every character of a name as the user wrote it, with 0x1F as the
// hierarchy separator and 0x1D after the domain; the internal form uses '.' as the
// separator, so a dot of a name (john.doe, Work.2026) becomes '^' there, and '!' ends the
// domain: "example.com\x1duser\x1fjohn.doe\x1fWork.2026" is
// "example.com!user.john^doe.Work^2026". ('^' itself is not allowed in a mailbox name,
// so the mapping is one to one.)
func DBNameToInternal(db string) string {
	var b strings.Builder
	if i := strings.IndexByte(db, 0x1D); i >= 0 {
		b.WriteString(db[:i])
		b.WriteByte('!')
		db = db[i+1:]
	}
	b.WriteString(strings.NewReplacer(".", "^", "\x1f", ".").Replace(db))
	return b.String()
}

// InternalToDBName turns an internal name into its mailboxes.db form: the inverse of
// DBNameToInternal.
func InternalToDBName(internal string) string {
	domain, rest, hasDomain := strings.Cut(internal, "!")
	if !hasDomain {
		domain, rest = "", internal
	}
	rest = strings.NewReplacer(".", "\x1f", "^", ".").Replace(rest)
	if !hasDomain {
		return rest
	}
	return domain + "\x1d" + rest
}

// CheckOwnNames refuses a master's GET USER answer that names a mailbox the user does
// not own by this package's reading of names. GET USER lists only the user's own
// folders (live and delayed-deleted), so a stranger is the sign of a master whose
// deletedprefix is not the one in use: its deleted folders would look like shared
// folders, and the replica's copies would be renamed after them.
func CheckOwnNames(user string, names []string) error {
	for _, n := range names {
		if UserOf(n) != user {
			return fmt.Errorf("the master lists %q for user %q, which is not that user's by our reading (deletedprefix %q): "+
				"give the master's imapd.conf (--master-config) or its deletedprefix (--deleted-prefix)", n, user, DeletedPrefix())
		}
	}
	return nil
}
