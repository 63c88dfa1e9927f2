package cyruspair

import "strings"

// Test code names a user's folder relative to the user's INBOX in Cyrus's internal form,
// whatever the pair's namespace: components separated by '.', a dot inside a component
// written '^' (Cyrus's own convention; IMAP refuses '^' in names): "Sent", "Work.Old" (Old
// below Work), "Work^2026" (one folder named Work.2026, default namespace only). Users are
// "alice" or, with virtual domains, "john.doe@example.com". The helpers below give what
// IMAP shows in the pair's namespace.

// IMAPFolder is what the user sees over IMAP for folder: "INBOX.Work.Old" in the netnews
// namespace, "Work/Old" in the default one.
func (p *Pair) IMAPFolder(folder string) string {
	folder = strings.TrimPrefix(folder, "INBOX.")
	if folder == "" || strings.EqualFold(folder, "INBOX") {
		return "INBOX"
	}
	if p.Namespace != NamespaceDefault {
		return "INBOX." + folder
	}
	return strings.ReplaceAll(strings.ReplaceAll(folder, ".", "/"), "^", ".")
}

// folderFromIMAP is IMAPFolder's inverse ("" for a name outside the user's INBOX tree in
// the netnews namespace).
func (p *Pair) folderFromIMAP(name string) string {
	if name == "INBOX" {
		return "INBOX"
	}
	if p.Namespace != NamespaceDefault {
		rel, _ := strings.CutPrefix(name, "INBOX.")
		if rel == name {
			return "" // another user's or a shared folder
		}
		return rel
	}
	if strings.HasPrefix(name, "Other Users/") || strings.HasPrefix(name, "Shared Folders/") {
		return "" // altnamespace's prefixes for other users' and shared folders
	}
	return strings.ReplaceAll(strings.ReplaceAll(name, ".", "^"), "/", ".")
}

// IMAPUser is the admin's IMAP name of the user's INBOX: user.alice (netnews),
// user/alice or user/john.doe@example.com (default).
func (p *Pair) IMAPUser(user string) string {
	if p.Namespace != NamespaceDefault {
		return "user." + user
	}
	return "user/" + user
}

// InternalName is the Cyrus internal name of a user's folder, the same in every
// namespace: user.alice.Sent, example.com!user.john^doe.Work^2026.
func InternalName(user, folder string) string {
	local, domain, hasDomain := strings.Cut(user, "@")
	name := "user." + strings.ReplaceAll(local, ".", "^")
	folder = strings.TrimPrefix(folder, "INBOX.")
	if folder != "" && !strings.EqualFold(folder, "INBOX") {
		name += "." + folder
	}
	if hasDomain {
		name = domain + "!" + name
	}
	return name
}

// FolderName is IMAPFolder for the netnews namespace ("INBOX.Sent"), for code that runs
// only there.
func FolderName(folder string) string {
	return (&Pair{Namespace: NamespaceNetnews}).IMAPFolder(folder)
}

// IMAPAdminName is the admin's IMAP name of a user's folder: user.alice.Sent (netnews),
// user/alice/Sent or user/john.doe/Sent@example.com (default: the domain goes last).
func (p *Pair) IMAPAdminName(user, folder string) string {
	folder = strings.TrimPrefix(folder, "INBOX.")
	inbox := folder == "" || strings.EqualFold(folder, "INBOX")
	if p.Namespace != NamespaceDefault {
		if inbox {
			return "user." + user
		}
		return "user." + user + "." + folder
	}
	local, domain, hasDomain := strings.Cut(user, "@")
	name := "user/" + local
	if !inbox {
		name += "/" + p.IMAPFolder(folder)
	}
	if hasDomain {
		name += "@" + domain
	}
	return name
}

// AdminName is the pair's IMAPAdminName, for code that holds only an Instance.
func (i *Instance) AdminName(user, folder string) string { return i.pair.IMAPAdminName(user, folder) }
