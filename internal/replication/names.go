package replication

import (
	"fmt"
	"strings"
)

// DeletedPrefix is the first component of Cyrus's delayed-delete namespace
// (imapd.conf deletedprefix, default "DELETED").
const DeletedPrefix = "DELETED"

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
	if strings.HasPrefix(s, DeletedPrefix+".") {
		n.Deleted = true
		s = s[len(DeletedPrefix)+1:]
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

// FolderName returns the internal name of folder rel ("INBOX", "Sent", "Work.Old") of a user.
func FolderName(userid, rel string) string {
	if rel == "" || rel == "INBOX" {
		return UserRoot(userid)
	}
	return UserRoot(userid) + "." + rel
}

// DBNameToInternal turns a mailboxes.db name (0x1F hierarchy separator, 0x1D after the
// domain) into the internal dotted name used on the wire.
func DBNameToInternal(db string) string {
	var b strings.Builder
	if i := strings.IndexByte(db, 0x1D); i >= 0 {
		b.WriteString(db[:i])
		b.WriteByte('!')
		db = db[i+1:]
	}
	b.WriteString(strings.ReplaceAll(db, "\x1f", "."))
	return b.String()
}

// asideName is where a replica folder without evidence is moved when the master's folder
// needs its name: a sibling that names the replica's uniqueid, so it is unique and telling.
func asideName(name, uniqueid string) string {
	return fmt.Sprintf("%s-replica-%s", name, uniqueid)
}

// tempName is the transit name used to break rename cycles: under the user's INBOX.
func tempName(name, uniqueid string) string {
	n := ParseName(name)
	if n.User == "" {
		return name + ".cyrusrepl-tmp-" + uniqueid
	}
	return UserRoot(n.User) + ".cyrusrepl-tmp-" + uniqueid
}
