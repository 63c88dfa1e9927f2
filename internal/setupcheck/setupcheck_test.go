package setupcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

func parse(t *testing.T, conf string) MasterConfig {
	t.Helper()
	c, err := ParseMasterConfig(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Cyrus 3.6's sync_log_init: unset channels = the unnamed channel; set = exactly the
// words listed, `""` spelling the unnamed one; sync_log off = nothing.
func TestWrittenChannels(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want []string
	}{
		{"sync_log: 1", []string{`""`}},
		{"sync_log: 0\nsync_log_channels: cyrusrepl", nil},
		{"", nil}, // sync_log defaults to off
		{"sync_log: yes\nsync_log_channels: cyrusrepl stock", []string{"cyrusrepl", "stock"}},
		{"sync_log: on\nsync_log_channels: \"\"   cyrusrepl", []string{`""`, "cyrusrepl"}},
		{"SYNC_LOG: true\nSync_Log_Channels: squatter", []string{"squatter"}},
		{"sync_log: 1\nsync_log_channels:", []string{}},
		{"sync_log: 1\nsync_log_channels: a,b", []string{"a,b"}}, // Cyrus splits on spaces only
	} {
		got := parse(t, tc.conf).WrittenChannels()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: written %q, want %q", tc.conf, got, tc.want)
		}
	}
}

func TestParseMasterConfig(t *testing.T) {
	c := parse(t, "# comment\nconfigdirectory: /var/lib/cyrus\npartition-default: /var/spool/cyrus\npartition-second: /srv/two\nlmtp_sync_log: 0\nstock_sync_host: x\n")
	if c.ConfigDirectory != "/var/lib/cyrus" || len(c.Partitions) != 2 || c.Partitions["second"] != "/srv/two" {
		t.Errorf("parsed %+v", c)
	}
	if !slices.Equal(c.Overrides, []string{"lmtp_sync_log"}) {
		t.Errorf("overrides %q", c.Overrides)
	}
	if _, err := ParseMasterConfig(strings.NewReader("sync_log: maybe")); err == nil {
		t.Error("sync_log: maybe parsed")
	}
}

func TestChannelFromDir(t *testing.T) {
	for dir, want := range map[string]string{
		"/var/lib/cyrus/sync/cyrusrepl":  "cyrusrepl",
		"/var/lib/cyrus/sync/cyrusrepl/": "cyrusrepl",
		"/var/lib/cyrus/sync":            `""`,
		"/mnt/channel":                   "?",
	} {
		got, ok := ChannelFromDir(dir)
		if !ok {
			got = "?"
		}
		if got != want {
			t.Errorf("ChannelFromDir(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestSyncLogCheck(t *testing.T) {
	ok := DirAccess{Path: "/x", Exists: true, Writable: true}
	for _, tc := range []struct {
		name, conf, channel string
		dir                 DirAccess
		status              report.CheckStatus
		setting             string
		says                string
	}{
		{"listed", "sync_log: 1\nsync_log_channels: cyrusrepl stock", "cyrusrepl", ok, report.CheckOK, "", "writes channel cyrusrepl"},
		{"not listed (#2248)", "sync_log: 1\nsync_log_channels: squatter stock", "cyrusrepl", ok, report.CheckFailed, "sync_log_channels", `does not list channel cyrusrepl`},
		{"sync_log off", "sync_log: 0\nsync_log_channels: cyrusrepl", "cyrusrepl", ok, report.CheckFailed, "sync_log", "sync_log is off"},
		{"sync_log unset", "sync_log_channels: cyrusrepl", "cyrusrepl", ok, report.CheckFailed, "sync_log", "sync_log is off"},
		{"unnamed, channels unset", "sync_log: 1", `""`, ok, report.CheckOK, "", "writes channel"},
		{"unnamed, spelled empty", "sync_log: 1", "", ok, report.CheckOK, "", "writes channel"},
		{"unnamed dropped by a new channel", "sync_log: 1\nsync_log_channels: squatter", `""`, ok, report.CheckFailed, "sync_log_channels", `add "" to sync_log_channels`},
		{"unnamed listed as \"\"", "sync_log: 1\nsync_log_channels: squatter \"\"", `""`, ok, report.CheckOK, "", "writes channel"},
		{"named, channels unset", "sync_log: 1", "cyrusrepl", ok, report.CheckFailed, "sync_log_channels", "does not list"},
		{"directory not writable", "sync_log: 1\nsync_log_channels: cyrusrepl", "cyrusrepl", DirAccess{Path: "/x", Exists: true}, report.CheckFailed, "", "not writable"},
		{"directory not there yet", "sync_log: 1\nsync_log_channels: cyrusrepl", "cyrusrepl", DirAccess{Path: "/x"}, report.CheckOK, "", "does not exist yet"},
		{"service override", "sync_log: 1\nsync_log_channels: cyrusrepl\nlmtp_sync_log: 0", "cyrusrepl", ok, report.CheckWarning, "lmtp_sync_log", "override"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SyncLog(parse(t, tc.conf), tc.channel, tc.dir)
			if got.Status != tc.status || got.Setting != tc.setting || !strings.Contains(got.Message, tc.says) {
				t.Errorf("got %+v\nwant status %s, setting %q, message saying %q", got, tc.status, tc.setting, tc.says)
			}
			if got.Status == report.CheckFailed && got.Reason != report.ReasonSyncLogNotWritten {
				t.Errorf("reason %q", got.Reason)
			}
			if strings.Contains(got.Message, "\n") {
				t.Errorf("message is not one line: %q", got.Message)
			}
		})
	}
}

func TestLookDir(t *testing.T) {
	d := t.TempDir()
	if a := LookDir(d); !a.Exists || !a.Writable || a.Err != nil {
		t.Errorf("LookDir(tmp) = %+v", a)
	}
	if a := LookDir(filepath.Join(d, "nope")); a.Exists || a.Err != nil {
		t.Errorf("LookDir(missing) = %+v", a)
	}
	f := filepath.Join(d, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if a := LookDir(f); a.Err == nil {
		t.Errorf("LookDir(file) = %+v", a)
	}
}

func TestVersions(t *testing.T) {
	const m36 = "master.pair.test Cyrus sync server 3.6.1-Debian-3.6.1-4+deb12u5"
	for _, tc := range []struct {
		name, master, replica string
		status                report.CheckStatus
		says                  []string
	}{
		{"same", m36, "replica.pair.test Cyrus sync server 3.6.1-Debian-3.6.1-4+deb12u5", report.CheckOK, []string{"3.6.1"}},
		{"patch differs", m36, "r Cyrus sync server 3.6.4", report.CheckOK, nil},
		{"minor differs", m36, "r Cyrus sync server 3.8.2", report.CheckWarning, []string{"3.6.1-Debian-3.6.1-4+deb12u5", "3.8.2"}},
		{"major differs", "m Cyrus sync server 2.5.17", "r Cyrus sync server 3.6.1", report.CheckWarning, []string{"2.5.17", "3.6.1"}},
		{"imap banner", "[CAPABILITY IMAP4rev1 LITERAL+] m Cyrus IMAP 3.6.1-Debian server ready", m36, report.CheckOK, nil},
		{"hidden", m36, "r server ready", report.CheckUnknown, []string{"replica"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Versions(tc.master, tc.replica)
			if got.Status != tc.status {
				t.Errorf("status %s, want %s: %+v", got.Status, tc.status, got)
			}
			if got.Status == report.CheckWarning && got.Reason != report.ReasonVersionSkew {
				t.Errorf("reason %q", got.Reason)
			}
			for _, s := range tc.says {
				if !strings.Contains(got.Message, s) {
					t.Errorf("message %q does not say %q", got.Message, s)
				}
			}
		})
	}
}

func TestChannelSilence(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                 string
		lastChannel, changed time.Time
		status               report.CheckStatus
	}{
		{"written with the change", t0, t0, report.CheckOK},
		{"idle master", t0.Add(-time.Hour), time.Time{}, report.CheckOK},
		{"master changed, channel a bit older", t0.Add(-5 * time.Minute), t0, report.CheckOK},
		{"master changed, channel silent too long", t0.Add(-11 * time.Minute), t0, report.CheckWarning},
		{"channel never written", time.Time{}, t0, report.CheckWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ChannelSilence("cyrusrepl", tc.lastChannel, tc.changed, 10*time.Minute)
			if got.Status != tc.status || (got.Status == report.CheckWarning) != (got.Reason == report.ReasonChannelSilent) {
				t.Errorf("got %+v, want %s", got, tc.status)
			}
		})
	}
}

func TestChannelLastChange(t *testing.T) {
	d := t.TempDir()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(d, old, old); err != nil {
		t.Fatal(err)
	}
	if got := ChannelLastChange(d); !got.Equal(old) {
		t.Fatalf("empty dir: %v, want %v", got, old)
	}
	if err := os.WriteFile(filepath.Join(d, "log"), []byte("USER alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ChannelLastChange(d); !got.After(old) {
		t.Fatalf("after a write: %v", got)
	}
	if !ChannelLastChange(filepath.Join(d, "nope")).IsZero() || !MasterLastChange(filepath.Join(d, "nope")).IsZero() {
		t.Fatal("missing paths give a time")
	}
}

func TestConfigFromAgent(t *testing.T) {
	// The agent's channel is "" for the unnamed one; its list spells it `""`.
	c := ConfigFromAgent(true, []string{"cyrusrepl", `""`}, nil)
	if !c.Writes("") || !c.Writes("cyrusrepl") || c.Writes("stock") {
		t.Fatalf("written %q", c.WrittenChannels())
	}
	if c := ConfigFromAgent(true, nil, nil); !c.Writes("") || c.Writes("cyrusrepl") {
		t.Fatalf("unset: written %q", c.WrittenChannels())
	}
	if got := SyncLog(ConfigFromAgent(true, []string{"squatter"}, nil), "cyrusrepl", DirAccess{Exists: true, Writable: true}); got.Setting != "sync_log_channels" {
		t.Fatalf("%+v", got)
	}
}
