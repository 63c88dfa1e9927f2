// Package mboxname is Cyrus's mailbox naming: parsing internal names (user, domain,
// the DELETED.* namespace with the master's deletedprefix), their mailboxes.db form, and
// the master's imapd.conf settings that shape names and deletes.
package mboxname
