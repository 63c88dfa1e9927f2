package synclog

import (
	"maps"
	"slices"
	"sort"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// UserWork is what a batch must do for one user.
type UserWork struct {
	User string
	// Full asks for a full user sync (GET USER at both ends). Set by USER, UNUSER,
	// UNMAILBOX, a RENAME across users or of an INBOX, and by escalation; otherwise only
	// Mailboxes are compared (a RENAME puts both its names there).
	Full      bool
	Mailboxes []string // internal names named by MAILBOX/APPEND/DOUBLEMAILBOX/ANNOTATION
	Meta      bool     // seen / subscriptions / sieve / quota
}

// Batch is a set of users processed together: a user is never split across batches,
// and users joined by a cross-user RENAME or DOUBLEMAILBOX share one batch.
type Batch struct {
	Users []UserWork
}

// UserNames lists the batch's users.
func (b Batch) UserNames() []string {
	out := make([]string, len(b.Users))
	for i, u := range b.Users {
		out[i] = u.User
	}
	return out
}

// Grouped is the result of grouping a log.
type Grouped struct {
	Batches []Batch
	// Skipped are entries the replicator does not act on (shared folders, server
	// annotations), recorded so nothing is silently dropped.
	Skipped []Entry
}

// GroupEntries turns sync-log entries into per-user batches.
func GroupEntries(entries []Entry) Grouped {
	gr := NewGrouper()
	var skipped []Entry
	for _, e := range entries {
		if !gr.Add(e) {
			skipped = append(skipped, e)
		}
	}
	g := gr.Batches()
	g.Skipped = skipped
	return g
}

// Grouper folds sync-log entries, one at a time, into per-user work. It holds one record
// per distinct user and folder named, however many lines name them, so a log of any
// length is grouped in bounded memory.
type Grouper struct {
	work    map[string]*UserWork
	folders map[string]map[string]bool // user → internal names
	parent  map[string]string          // union-find over users joined by cross-user entries
}

// NewGrouper returns an empty Grouper.
func NewGrouper() *Grouper {
	return &Grouper{work: map[string]*UserWork{}, folders: map[string]map[string]bool{}, parent: map[string]string{}}
}

// Users is the number of distinct users seen so far.
func (g *Grouper) Users() int { return len(g.work) }

func (g *Grouper) find(u string) string {
	for g.parent[u] != u {
		g.parent[u] = g.parent[g.parent[u]]
		u = g.parent[u]
	}
	return u
}

func (g *Grouper) user(u string) *UserWork {
	w, ok := g.work[u]
	if !ok {
		w = &UserWork{User: u}
		g.work[u] = w
		g.folders[u] = map[string]bool{}
		g.parent[u] = u
	}
	return w
}

func (g *Grouper) union(a, b string) {
	if ra, rb := g.find(a), g.find(b); ra != rb {
		g.parent[rb] = ra
	}
}

// mailbox notes a user's folder; it returns the user ("" when the name is no user's).
func (g *Grouper) mailbox(name string, full bool) string {
	u := mboxname.UserOf(name)
	if u == "" {
		return ""
	}
	w := g.user(u)
	w.Full = w.Full || full
	g.folders[u][name] = true
	return u
}

// Add folds one entry in. It returns false when the replicator does not act on the
// entry (shared folders, server annotations): the caller records it as skipped.
func (g *Grouper) Add(e Entry) bool {
	switch e.Type {
	case "MAILBOX", "APPEND", "ANNOTATION":
		return g.mailbox(e.Args[0], false) != ""
	case "DOUBLEMAILBOX", "RENAME":
		full := e.Type == "RENAME" && !localRename(e.Args[0], e.Args[1])
		ua, ub := g.mailbox(e.Args[0], full), g.mailbox(e.Args[1], full)
		if ua != "" && ub != "" {
			g.union(ua, ub)
		}
		return ua != "" || ub != ""
	case "UNMAILBOX":
		return g.mailbox(e.Args[0], true) != ""
	case "USER", "UNUSER":
		g.user(e.Args[0]).Full = true
		return true
	case "META", "SIEVE", "SEEN", "SUB", "UNSUB":
		g.user(e.Args[0]).Meta = true
		return true
	case "QUOTA":
		if u := mboxname.UserOf(e.Args[0]); u != "" {
			g.user(u).Meta = true
			return true
		}
	}
	return false
}

// Batches returns the work grouped so far: users joined by a cross-user RENAME or
// DOUBLEMAILBOX share a batch; batches are sorted by their first user.
func (g *Grouper) Batches() Grouped {
	comps := map[string][]string{}
	for u := range g.work {
		r := g.find(u)
		comps[r] = append(comps[r], u)
	}
	var out Grouped
	for _, users := range comps {
		sort.Strings(users)
		var b Batch
		for _, u := range users {
			w := *g.work[u]
			w.Mailboxes = slices.Sorted(maps.Keys(g.folders[u]))
			b.Users = append(b.Users, w)
		}
		out.Batches = append(out.Batches, b)
	}
	sort.Slice(out.Batches, func(i, j int) bool { return out.Batches[i].Users[0].User < out.Batches[j].Users[0].User })
	return out
}

// localRename reports whether a logged RENAME stays within one user and moves neither
// user's INBOX: only such a rename may be handled at mailbox level (both names are then
// in the batch, and Cyrus logs one RENAME per folder of a renamed subtree).
func localRename(from, to string) bool {
	u := mboxname.UserOf(from)
	return u != "" && u == mboxname.UserOf(to) && from != mboxname.UserRoot(u) && to != mboxname.UserRoot(u)
}
