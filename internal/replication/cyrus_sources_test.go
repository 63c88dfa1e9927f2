package replication

import (
	"os"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agentclient"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/agenttest"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// The Cyrus suites read the master's sync log and mailboxes.db from its disk. With
// CYRUSREPL_VIA_AGENT=1 (make test-agent) they read both through a master agent process
// beside the pair instead, so the same assertions hold for the agent's two sources.

// masterLog is the source of the master's channel whose directory is logDir.
func masterLog(t testing.TB, m *cyruspair.Instance, logDir string) synclog.Source {
	t.Helper()
	if !agenttest.Enabled() {
		return synclog.NewDir(logDir)
	}
	return agentClient(t, m, agenttest.ChannelOf(t, m, logDir))
}

// masterMailboxesDB is the source of the master's mailboxes.db.
func masterMailboxesDB(t testing.TB, m *cyruspair.Instance, channel string) mboxdb.Source {
	t.Helper()
	if !agenttest.Enabled() {
		db, err := mboxdb.NewReader("", m.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	return agentClient(t, m, channel)
}

// masterIndex reads the master's mailbox indexes (update deltas): from its disk, or
// through the agent.
func masterIndex(t testing.TB, m *cyruspair.Instance, channel string) cyrusindex.Source {
	t.Helper()
	if !agenttest.Enabled() {
		local, err := cyrusindex.NewLocal(m.ConfigPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		return local
	}
	return agentClient(t, m, channel)
}

func agentClient(t testing.TB, m *cyruspair.Instance, channel string) *agentclient.Client {
	t.Helper()
	a := agenttest.For(t, m, channel)
	t.Logf("the master's sync log and mailboxes.db through its agent at %s (channel %q)", a.URL, channel)
	c, err := agentclient.New(agentclient.Options{URL: a.URL, TokenFile: a.TokenFile, CAFile: a.CAFile,
		Consumer: "test " + t.Name(), Owner: "test-state-" + t.Name(),
		Wait: 300 * time.Millisecond, // a short long-poll: Cycle waits it out when the log is empty
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMain(m *testing.M) {
	code := m.Run()
	agenttest.RemoveBin()
	os.Exit(code)
}
