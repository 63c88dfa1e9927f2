package cyruspair

import (
	"fmt"
	"strings"
	"testing"
)

// FillInbox makes the user's empty INBOX hold n messages the fast way: up to distinct
// different messages over LMTP (1,000 per session), then GrowInbox to n. LMTP costs an
// fsync per message, so 100,000 deliveries would take many minutes; a server-side COPY
// of thousands of messages takes seconds.
func (i *Instance) FillInbox(t testing.TB, user string, n, distinct int) {
	t.Helper()
	distinct = max(1, min(n, distinct))
	for done := 0; done < distinct; {
		k := min(1000, distinct-done)
		msgs := make([][]byte, k)
		for j := range msgs {
			msgs[j] = Message(fmt.Sprintf("%s fill %d", user, done+j),
				strings.Repeat("a line of a message in a large INBOX\n", 5+(done+j)%40))
		}
		i.DeliverMany(t, user, msgs)
		done += k
	}
	i.GrowInbox(t, user, n)
}

// GrowInbox COPYs the user's INBOX into itself, doubling it at most each time, until it
// holds n messages. The copies share their bodies and carry the flags and annotations
// the originals have at the time, but each is a record of its own with its own UID
// and modseq.
func (i *Instance) GrowInbox(t testing.TB, user string, n int) {
	t.Helper()
	c := i.IMAPAs(t, user)
	defer c.Close()
	have := int(i.Status(t, user, "INBOX").Messages)
	if have == 0 {
		t.Fatalf("grow %s's INBOX on %s: it is empty, nothing to copy", user, i.Name)
	}
	if _, err := c.Cmd("SELECT INBOX"); err != nil {
		t.Fatalf("grow %s's INBOX on %s: %v", user, i.Name, err)
	}
	for have < n {
		k := min(have, n-have)
		if _, err := c.Cmd("COPY 1:%d INBOX", k); err != nil {
			t.Fatalf("grow %s's INBOX on %s: copy %d of %d: %v", user, i.Name, k, have, err)
		}
		have += k
	}
	if st := i.Status(t, user, "INBOX"); int(st.Messages) != n {
		t.Fatalf("grow %s's INBOX on %s: it holds %d messages, want %d", user, i.Name, st.Messages, n)
	}
}
