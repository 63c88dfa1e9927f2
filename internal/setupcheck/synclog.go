package setupcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// ChannelFromDir names the channel whose directory dir is, from its path: Cyrus writes
// channel NAME in <configdirectory>/sync/NAME/ and the unnamed channel in
// <configdirectory>/sync/. It returns `""` for the unnamed channel, and ok false when
// the path does not say (a volume mounted under another name).
func ChannelFromDir(dir string) (channel string, ok bool) {
	dir = filepath.Clean(dir)
	switch {
	case filepath.Base(dir) == "sync":
		return UnnamedChannel, true
	case filepath.Base(filepath.Dir(dir)) == "sync":
		return filepath.Base(dir), true
	}
	return "", false
}

// DirAccess is what the reader found of the channel's directory.
type DirAccess struct {
	Path     string
	Exists   bool
	Writable bool  // the reader may create, rename and remove files in it
	Err      error // looking failed for another reason
}

// access(2) modes (unistd.h).
const (
	accessSearch = 0x1 // X_OK
	accessWrite  = 0x2 // W_OK
)

// LookDir checks whether this process may rename and remove files in dir (write and
// search permission, as the kernel decides for this process's ids).
func LookDir(dir string) DirAccess {
	a := DirAccess{Path: dir}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a
	case err != nil:
		a.Err = err
		return a
	case !st.IsDir():
		a.Exists, a.Err = true, fmt.Errorf("%s is not a directory", dir)
		return a
	}
	a.Exists = true
	a.Writable = syscall.Access(dir, accessWrite|accessSearch) == nil
	return a
}

// SyncLog checks that the master writes the channel a rolling replicator consumes and
// that the replicator may consume it. channel is the channel's name as
// sync_log_channels spells it (`""` for the unnamed one). Failed means the channel can
// never be written or read as configured: the replicator must not start.
func SyncLog(c MasterConfig, channel string, dir DirAccess) report.Check {
	if channel == "" {
		channel = UnnamedChannel
	}
	fail := func(setting, msg string) report.Check {
		return report.Check{Name: report.CheckSyncLog, Status: report.CheckFailed,
			Reason: report.ReasonSyncLogNotWritten, Setting: setting, Message: msg}
	}
	switch {
	case !c.SyncLog:
		return fail("sync_log", fmt.Sprintf("sync_log is off in the master's imapd.conf: Cyrus writes no sync log, so channel %s is never written; set sync_log: 1", channel))
	case !c.Writes(channel):
		return fail("sync_log_channels", channelsMessage(c, channel))
	case dir.Err != nil:
		return fail("", fmt.Sprintf("the channel directory %s: %v", dir.Path, dir.Err))
	case dir.Exists && !dir.Writable:
		return fail("", fmt.Sprintf("the channel directory %s is not writable by the replicator (uid %d, gid %d): it could never take the log; run it as the Cyrus user", dir.Path, os.Getuid(), os.Getgid()))
	}
	msg := fmt.Sprintf("the master writes channel %s", channel)
	if !dir.Exists {
		msg += fmt.Sprintf("; its directory %s does not exist yet (Cyrus creates it on its first write)", dir.Path)
	}
	if len(c.Overrides) > 0 {
		return report.Check{Name: report.CheckSyncLog, Status: report.CheckWarning, Reason: report.ReasonSyncLogNotWritten,
			Setting: c.Overrides[0], Message: msg + "; but " + strings.Join(c.Overrides, ", ") + " override the sync-log settings for some services, which this check does not follow"}
	}
	return report.Check{Name: report.CheckSyncLog, Status: report.CheckOK, Message: msg}
}

func channelsMessage(c MasterConfig, channel string) string {
	listed := strings.Join(c.SyncLogChannels, " ")
	if channel == UnnamedChannel {
		return fmt.Sprintf("sync_log_channels is %q in the master's imapd.conf and does not list the unnamed channel this replicator consumes: Cyrus writes only the channels listed, so it never writes it; add %s to sync_log_channels", listed, UnnamedChannel)
	}
	return fmt.Sprintf("sync_log_channels is %q in the master's imapd.conf and does not list channel %s, which this replicator consumes: Cyrus never writes it; add %s to sync_log_channels (and keep %s there if a stock sync_client consumes the unnamed channel)", listed, channel, channel, UnnamedChannel)
}
