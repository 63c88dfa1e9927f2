package synclog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// appendLog writes one entry the way Cyrus's sync_log_base does (AppendLine).
func appendLog(t testing.TB, dir, line string) {
	t.Helper()
	if err := AppendLine(dir, line); err != nil {
		t.Fatal(err)
	}
}

func TestLogDirCycle(t *testing.T) {
	dir := t.TempDir()
	l := NewDir(dir)
	if err := l.ConsumeOnce(func(sc *Scanner, _ bool) error { ScanAll(sc); return nil }); !errors.Is(err, ErrNoLog) {
		t.Fatalf("empty dir: %v", err)
	}
	appendLog(t, dir, "MAILBOX user.a")
	appendLog(t, dir, "garbage(")
	boom := errors.New("replica down")
	err := l.ConsumeOnce(func(sc *Scanner, re bool) error {
		e, bad := ScanAll(sc)
		if len(e) != 1 || len(bad) != 1 || re {
			t.Fatalf("first pass: %v %v %v", e, bad, re)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want handler error, got %v", err)
	}
	// New entries arrive in a fresh log while log-run waits.
	appendLog(t, dir, "MAILBOX user.b")
	var seen []string
	if err := l.ConsumeOnce(func(sc *Scanner, re bool) error {
		e, _ := ScanAll(sc)
		if !re {
			t.Fatal("leftover log-run not marked reprocessed")
		}
		for _, x := range e {
			seen = append(seen, x.Args[0])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.ConsumeOnce(func(sc *Scanner, re bool) error {
		e, _ := ScanAll(sc)
		for _, x := range e {
			seen = append(seen, x.Args[0])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[user.a user.b]" {
		t.Fatalf("seen %v", seen)
	}
	if _, err := os.Stat(filepath.Join(dir, "log-run")); !os.IsNotExist(err) {
		t.Fatalf("log-run left behind: %v", err)
	}
}

// TestLogDirSIGKILL runs a consumer in a child process while a writer keeps appending,
// and kills it with SIGKILL mid-batch: the child says "mid" once it has renamed the log
// and handled (fsynced) its k-th entry, and then waits inside the cycle, so every kill
// lands after the rename and at least one handled entry and before log-run is removed
// (the test checks log-run is there at each kill). Restarted, it must lose no entry.
func TestLogDirSIGKILL(t *testing.T) {
	if os.Getenv("CYRUSREPL_LOGDIR_CHILD") != "" {
		return
	}
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "processed")
	const total = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			appendLog(t, dir, fmt.Sprintf("MAILBOX user.u%d", i))
			time.Sleep(time.Millisecond)
		}
	}()
	kills := 0
	for writing := true; writing; {
		select {
		case <-done:
			writing = false
		default:
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestLogDirChild$")
		cmd.Env = append(os.Environ(), "CYRUSREPL_LOGDIR_CHILD="+dir, "CYRUSREPL_LOGDIR_OUT="+out,
			"CYRUSREPL_LOGDIR_STOP_AFTER="+strconv.Itoa(1+kills%5))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mid := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "mid" {
					mid <- true
					return
				}
			}
			mid <- false
		}()
		select {
		case ok := <-mid:
			if !ok {
				t.Fatal("consumer child ended without reaching mid-batch")
			}
		case <-time.After(time.Minute): // hang guard
			t.Fatal("consumer child never reached mid-batch")
		}
		if _, err := os.Stat(filepath.Join(dir, "log-run")); err != nil {
			t.Fatalf("mid-batch but log-run is not there: %v", err)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
	}
	// A last run with no kill drains everything.
	drain := exec.Command(os.Args[0], "-test.run=^TestLogDirChild$")
	drain.Env = append(os.Environ(), "CYRUSREPL_LOGDIR_CHILD="+dir, "CYRUSREPL_LOGDIR_OUT="+out, "CYRUSREPL_LOGDIR_DRAIN=1")
	if b, err := drain.CombinedOutput(); err != nil {
		t.Fatalf("drain: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		got[sc.Text()] = true
	}
	for i := range total {
		if !got["user.u"+strconv.Itoa(i)] {
			t.Fatalf("entry %d lost after %d SIGKILLs", i, kills)
		}
	}
	t.Logf("%d SIGKILLs, each mid-batch, %d entries, none lost", kills, total)
}

// TestLogDirChild is the consumer the SIGKILL test runs as a child process: it appends
// every entry to the output file (fsync) before the cycle ends, like an executor that
// finishes replicating before log-run is removed. With CYRUSREPL_LOGDIR_STOP_AFTER=k it
// prints "mid" after its k-th entry and waits there for the kill.
func TestLogDirChild(t *testing.T) {
	dir := os.Getenv("CYRUSREPL_LOGDIR_CHILD")
	if dir == "" {
		t.Skip("helper for TestLogDirSIGKILL")
	}
	drain := os.Getenv("CYRUSREPL_LOGDIR_DRAIN") != ""
	stopAfter, _ := strconv.Atoi(os.Getenv("CYRUSREPL_LOGDIR_STOP_AFTER"))
	out, err := os.OpenFile(os.Getenv("CYRUSREPL_LOGDIR_OUT"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	l := NewDir(dir)
	handled := 0
	for {
		err := l.ConsumeOnce(func(sc *Scanner, _ bool) error {
			e, _ := ScanAll(sc)
			for _, x := range e {
				fmt.Fprintln(out, x.Args[0])
				if err := out.Sync(); err != nil {
					return err
				}
				if handled++; handled == stopAfter {
					fmt.Println("mid")
					time.Sleep(time.Hour) // wait here for the SIGKILL
				}
			}
			return nil
		})
		if errors.Is(err, ErrNoLog) {
			if drain {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fcntlLock takes (or, with F_UNLCK, releases) a POSIX write lock on the whole of f the
// way Cyrus's lock_blocking does (lib/lock_fcntl.c: F_SETLKW, F_WRLCK, offset 0, length 0).
func fcntlLock(f *os.File, typ int16) error {
	lk := syscall.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
	for {
		err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// TestLogDirWaitsForCyrusWriter: a Cyrus writer (sync_log_base) that opened "log" and took
// its POSIX record lock before our rename appends after it. Begin must wait for that lock
// so the line is in what the cycle reads; it must never be unlinked with log-run. The
// writer is another process, since POSIX locks never exclude their own process.
func TestLogDirWaitsForCyrusWriter(t *testing.T) {
	dir := t.TempDir()
	appendLog(t, dir, "MAILBOX user.before")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogDirFcntlWriterChild$")
	cmd.Env = append(os.Environ(), "CYRUSREPL_FCNTL_WRITER="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	locked := false
	for !locked && sc.Scan() {
		locked = sc.Text() == "locked"
	}
	if !locked {
		t.Fatal("writer child did not report its lock")
	}
	var seen []string
	done := make(chan error, 1)
	go func() {
		done <- NewDir(dir).ConsumeOnce(func(sc *Scanner, _ bool) error {
			e, _ := ScanAll(sc)
			for _, x := range e {
				seen = append(seen, x.Args[0])
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // hang guard
		t.Fatal("ConsumeOnce hung")
	}
	if fmt.Sprint(seen) != "[user.before user.locked]" {
		t.Fatalf("the cycle read %v; the line appended under the writer's lock across the rename was lost (log-run unlinked)", seen)
	}
}

// TestLogDirFcntlWriterChild is the writer of TestLogDirWaitsForCyrusWriter: it does what
// sync_log_base does (open O_APPEND, lock, check the inode is still "log"), reports the
// lock, waits until the consumer has renamed the log and either removed log-run or kept
// waiting for a second, then appends, fsyncs and unlocks.
func TestLogDirFcntlWriterChild(t *testing.T) {
	dir := os.Getenv("CYRUSREPL_FCNTL_WRITER")
	if dir == "" {
		t.Skip("helper for TestLogDirWaitsForCyrusWriter")
	}
	path := filepath.Join(dir, "log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if err := fcntlLock(f, syscall.F_WRLCK); err != nil {
		t.Fatal(err)
	}
	fst, _ := f.Stat()
	if st, err := os.Stat(path); err != nil || !os.SameFile(fst, st) {
		t.Fatal("log moved before the lock")
	}
	fmt.Println("locked")
	for { // the consumer renames log → log-run
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	run := filepath.Join(dir, "log-run")
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(run); errors.Is(err, os.ErrNotExist) {
			break // the consumer did not wait for us
		}
	}
	if _, err := f.WriteString("MAILBOX user.locked\n"); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	if err := fcntlLock(f, syscall.F_UNLCK); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
