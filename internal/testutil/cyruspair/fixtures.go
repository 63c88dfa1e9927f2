package cyruspair

import "testing"

// SeedAlice gives alice on m the suites' common fixture: folders (Sent, Work, Work.Old),
// mail with system and user flags, a subscription, a quota and an annotation.
func SeedAlice(t testing.TB, m *Instance) {
	t.Helper()
	m.CreateUser(t, "alice")
	m.CreateFolder(t, "alice", "Sent")
	m.CreateFolder(t, "alice", "Work")
	m.CreateFolder(t, "alice", "Work.Old")
	m.Deliver(t, "alice", Message("hello", "first"))
	m.Deliver(t, "alice", Message("again", "second"))
	m.Append(t, "alice", "Sent", Message("sent", "body"), `\Seen`)
	m.Append(t, "alice", "Work", Message("w1", "work one"), `\Flagged`, "$Label1")
	m.Append(t, "alice", "Work", Message("w2", "work two"))
	m.Append(t, "alice", "Work.Old", Message("old", "old work"))
	m.Store(t, "alice", "INBOX", "1", "+FLAGS", `\Seen`)
	m.Subscribe(t, "alice", "Sent")
	m.SetQuota(t, "alice", 100000)
	m.SetAnnotation(t, "alice", "Sent", "/comment", "sent mail")
}
