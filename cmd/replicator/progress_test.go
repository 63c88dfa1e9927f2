package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// fleet creates n users on the master (u000, u001, …), each with msgs messages of its
// own (distinct bodies, so each is uploaded), and returns their names.
func fleet(t *testing.T, p *cyruspair.Pair, n, msgs int) []string {
	t.Helper()
	admin := p.Master.IMAPAs(t, p.AdminUser)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%03d", i)
		if _, err := admin.Cmd("CREATE %s", cyruspair.Quote(p.IMAPUser(users[i]))); err != nil {
			t.Fatalf("create %s: %v", users[i], err)
		}
		bodies := make([][]byte, msgs)
		for k := range bodies {
			bodies[k] = cyruspair.Message(fmt.Sprintf("%s %d", users[i], k), strings.Repeat(users[i]+" progress test body\n", 20+k))
		}
		p.Master.DeliverMany(t, users[i], bodies)
	}
	return users
}

// progressLines decodes the "progress" lines of a run's stdout.
func progressLines(t *testing.T, out string) []report.Progress {
	t.Helper()
	var got []report.Progress
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, `"type":"progress"`) {
			continue
		}
		var keys map[string]any
		if err := json.Unmarshal([]byte(l), &keys); err != nil {
			t.Fatalf("progress line %q: %v", l, err)
		}
		want := []string{"type", "done", "total", "failed", "bodies", "bytes", "elapsedMs", "etaMs"}
		if len(keys) != len(want) {
			t.Fatalf("progress line %q: keys %v, want exactly %v", l, keys, want)
		}
		for _, k := range want {
			if _, ok := keys[k]; !ok {
				t.Fatalf("progress line %q lacks %q", l, k)
			}
		}
		var p report.Progress
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	return got
}

// checkProgress checks a pass's progress lines: at least one per two seconds of the pass
// and a final one, figures that never go back, the total constant, and a final line
// (the last, after every user line) equal to the report's progress.
func checkProgress(t *testing.T, what, out string, total int, sum *report.Summary) report.Progress {
	t.Helper()
	ps := progressLines(t, out)
	if len(ps) == 0 {
		t.Fatalf("%s: no progress line\n%s", what, out)
	}
	final := ps[len(ps)-1]
	t.Logf("%s: %d progress lines; final %+v", what, len(ps), final)
	// One line per two seconds of the pass, plus the final one (one tick of slack for
	// a loaded machine).
	if min := int(final.ElapsedMS / 2000); len(ps) < min {
		t.Errorf("%s: %d progress lines over %d ms, want at least %d", what, len(ps), final.ElapsedMS, min)
	}
	for i, p := range ps {
		if p.Total != total {
			t.Errorf("%s: line %d total %d, want %d", what, i, p.Total, total)
		}
		if i == 0 {
			continue
		}
		q := ps[i-1]
		if p.Done < q.Done || p.Failed < q.Failed || p.Bodies < q.Bodies || p.Bytes < q.Bytes || p.ElapsedMS < q.ElapsedMS {
			t.Errorf("%s: line %d went back: %+v after %+v", what, i, p, q)
		}
	}
	if final.Done != total || final.ETAMS != 0 {
		t.Errorf("%s: final line %+v, want done = total = %d and etaMs 0", what, final, total)
	}
	lastUser := strings.LastIndex(out, `"type":"user"`)
	lastProgress := strings.LastIndex(out, `"type":"progress"`)
	if lastUser > lastProgress {
		t.Errorf("%s: a user line follows the final progress line", what)
	}
	if sum != nil {
		sp := sum.Progress
		if sp == nil || !sp.Finished {
			t.Fatalf("%s: report progress %+v, want the final figures", what, sp)
		}
		got := *sp
		got.Started, got.Finished = time.Time{}, false
		if got != final {
			t.Errorf("%s: report progress %+v, final line %+v", what, got, final)
		}
		if sum.UsersTotal != final.Done || sum.UsersFailed != final.Failed {
			t.Errorf("%s: report users %d (failed %d), final line %+v", what, sum.UsersTotal, sum.UsersFailed, final)
		}
	}
	return final
}

func readSummary(t *testing.T, path string) *report.Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s report.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestCLIProgressRecords (issue #15 item 1): sync, verify and audit of a few hundred
// users on the real pair print progress lines while they run and a final one equal to
// the report's figures: users done of the users to do, and the bodies and bytes the
// sync uploaded (each user's own messages, so every body travels once).
func TestCLIProgressRecords(t *testing.T) {
	c := newCLI(t, "delayed")
	const n, msgs = 300, 2
	users := fleet(t, c.p, n, msgs)
	userArgs := []string{"--user", strings.Join(users, ",")}
	rep := filepath.Join(t.TempDir(), "report.json")

	code, out, errs := c.run(t, append([]string{"sync", "--report", rep}, userArgs...)...)
	if code != exitOK {
		t.Fatalf("sync: exit %d\n%s", code, errs)
	}
	final := checkProgress(t, "sync", out, n, readSummary(t, rep))
	sent := 0
	for _, u := range lines(t, out, "user") {
		sent += int(u["bodiesSent"].(float64))
	}
	if final.Bodies != n*msgs || sent != n*msgs || final.Failed != 0 {
		t.Errorf("sync: final %+v, user lines sent %d bodies, want %d bodies", final, sent, n*msgs)
	}
	// Every body is a delivered message of at least its text's size.
	if min := int64(n * msgs * len("u000 progress test body\n") * 20); final.Bytes < min {
		t.Errorf("sync: %d bytes uploaded, want at least %d", final.Bytes, min)
	}

	code, out, errs = c.run(t, append([]string{"verify", "--report", rep}, userArgs...)...)
	if code != exitOK {
		t.Fatalf("verify: exit %d\n%s", code, errs)
	}
	if f := checkProgress(t, "verify", out, n, readSummary(t, rep)); f.Bodies != 0 || f.Bytes != 0 {
		t.Errorf("verify uploaded: %+v", f)
	}

	// audit lists the master's users itself (its mailboxes.db): every user, once.
	code, out, errs = c.run(t, "audit", "--report", rep)
	if code != exitOK {
		t.Fatalf("audit: exit %d\n%s", code, errs)
	}
	if f := checkProgress(t, "audit", out, n, readSummary(t, rep)); f.Bodies != 0 {
		t.Errorf("audit of users in step uploaded bodies: %+v", f)
	}
}

// stateDirOf is the --state-dir of the CLI's common flags.
func stateDirOf(c *cli) string {
	i := slices.Index(c.common, "--state-dir")
	return c.common[i+1]
}

// seedDone reads the users the seed record shows done.
func seedDone(t *testing.T, stateDir string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "seed", "done"))
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		var u string
		if json.Unmarshal([]byte(l), &u) == nil {
			done[u] = true
		}
	}
	return done
}

// TestCLISeedResumesAfterSIGKILL (issue #15 item 2): `rolling --seed auto` on a new
// state seeds the empty replica with every master user before the log; killed with
// SIGKILL mid-pass, the restarted replicator resumes: the users recorded done are not
// synced again (no user line, no upload for them), the others are, and the pass then
// completes and never runs again on this state. A state kept beside a replica that
// holds the master's users is not seeded.
func TestCLISeedResumesAfterSIGKILL(t *testing.T) {
	c := newCLI(t, "delayed")
	const n = 200
	users := fleet(t, c.p, n, 1)
	logDir := c.p.Master.SyncLogDir(c.p.Channel)
	// Only the seeding pass acts: the log that created the users is dropped.
	if err := os.Remove(filepath.Join(logDir, "log")); err != nil {
		t.Fatal(err)
	}
	state := stateDirOf(c)

	args := append([]string{"rolling"}, c.common...)
	args = append(args, "--sync-log", logDir, "--seed", "auto", "--progress-interval", "100ms", "--workers", "1")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	enc, _ := json.Marshal(args)
	cmd.Env = append(os.Environ(), "CYRUSREPL_CHILD_ARGS="+string(enc))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once the pass has done a quarter of the users.
	sc := bufio.NewScanner(stdout)
	var seen []string
	killed := false
	deadline := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() }) // hang guard
	defer deadline.Stop()
	for sc.Scan() {
		l := sc.Text()
		seen = append(seen, l)
		if ps := progressLines(t, l); len(ps) == 1 && ps[0].Done >= n/4 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("the seeding pass never reached %d users:\n%s", n/4, strings.Join(seen, "\n"))
	}
	if s := lines(t, strings.Join(seen, "\n"), "seed"); len(s) == 0 || s[0]["event"] != "start" || !strings.Contains(s[0]["reason"].(string), "began empty") {
		t.Fatalf("first run's seed line: %v", s)
	}
	done := seedDone(t, state)
	if len(done) < n/4-1 || len(done) >= n {
		t.Fatalf("%d users recorded done after the kill at %d", len(done), n/4)
	}

	rep := filepath.Join(t.TempDir(), "report.json")
	code, out, errs := c.run(t, "rolling", "--sync-log", logDir, "--seed", "auto", "--once", "--report", rep)
	if code != exitOK {
		t.Fatalf("resumed rolling: exit %d\n%s\n%s", code, errs, out)
	}
	s := lines(t, out, "seed")
	if len(s) != 2 || s[0]["event"] != "resume" || int(s[0]["done"].(float64)) != len(done) || s[1]["event"] != "complete" || int(s[1]["users"].(float64)) != n {
		t.Fatalf("resumed run's seed lines: %v (recorded done %d)", s, len(done))
	}
	synced := map[string]bool{}
	for _, u := range lines(t, out, "user") {
		name := u["user"].(string)
		if done[name] {
			t.Errorf("user %s was done before the kill and was synced again", name)
		}
		synced[name] = true
	}
	for _, u := range users {
		if !done[u] && !synced[u] {
			t.Errorf("user %s was neither done before the kill nor synced after", u)
		}
	}
	ps := progressLines(t, out)
	if len(ps) == 0 || ps[0].Done < len(done) {
		t.Fatalf("resumed progress: %v, want the first line to count the %d users done", ps, len(done))
	}
	final := checkProgress(t, "seed", out, n, nil)
	if final.Bodies > int64(n-len(done)) {
		t.Errorf("resumed pass uploaded %d bodies, at most %d users (one message each) were left", final.Bodies, n-len(done))
	}
	sum := readSummary(t, rep)
	if sum.Seed == nil || sum.Seed.State != report.SeedComplete || sum.Seed.Users != n || sum.Progress == nil || sum.Progress.Done != n {
		t.Fatalf("report after the pass: seed %+v progress %+v", sum.Seed, sum.Progress)
	}
	code, out, _ = c.run(t, "verify", "--user", strings.Join(users, ","))
	if code != exitOK {
		t.Fatalf("verify after seeding: exit %d\n%s", code, out)
	}

	// Complete: a restart does not seed again.
	code, out, errs = c.run(t, "rolling", "--sync-log", logDir, "--seed", "auto", "--once")
	if code != exitOK || len(lines(t, out, "seed")) != 0 || len(lines(t, out, "user")) != 0 {
		t.Fatalf("rolling after the seed completed: exit %d, seed lines %v, user lines %d\n%s", code, lines(t, out, "seed"), len(lines(t, out, "user")), errs)
	}

	// Another state directory, kept (it has a state.json), beside a replica that holds
	// the master's users: no pass.
	kept := t.TempDir()
	withState := func(dir string, args ...string) (int, string, string) {
		a := slices.Clone(c.common)
		a[slices.Index(a, "--state-dir")+1] = dir
		var o, e strings.Builder
		code := run(t.Context(), append(args[:1:1], append(a, args[1:]...)...), &o, &e)
		return code, o.String(), e.String()
	}
	if code, _, errs := withState(kept, "verify", "--user", users[0]); code != exitOK {
		t.Fatalf("verify on a second state: exit %d %s", code, errs)
	}
	code, out, errs = withState(kept, "rolling", "--sync-log", logDir, "--seed", "auto", "--once")
	s = lines(t, out, "seed")
	if code != exitOK || len(s) != 1 || s[0]["event"] != report.SeedNotNeeded || len(lines(t, out, "user")) != 0 {
		t.Fatalf("rolling on a kept state beside a full replica: exit %d, seed lines %v\n%s", code, s, errs)
	}
}

// TestCLISeedWipedReplica: a state kept from an earlier run (it has a state.json) beside
// a replica that holds none of the master's users (a wiped replica) is seeded too, and
// the seeding pass fills it.
func TestCLISeedWipedReplica(t *testing.T) {
	c := newCLI(t, "delayed")
	users := fleet(t, c.p, 20, 1)
	logDir := c.p.Master.SyncLogDir(c.p.Channel)
	if err := os.Remove(filepath.Join(logDir, "log")); err != nil {
		t.Fatal(err)
	}
	// An earlier run began the state (verify writes nothing to the replica).
	if code, _, errs := c.run(t, "verify", "--user", users[0]); code != exitFailed {
		t.Fatalf("verify of a user missing on the replica: exit %d %s", code, errs)
	}
	code, out, errs := c.run(t, "rolling", "--sync-log", logDir, "--seed", "auto", "--once")
	s := lines(t, out, "seed")
	if code != exitOK || len(s) != 2 || s[0]["event"] != "start" || !strings.Contains(s[0]["reason"].(string), "holds none of 16") || s[1]["event"] != report.SeedComplete {
		t.Fatalf("rolling on a kept state beside a wiped replica: exit %d, seed lines %v\n%s", code, s, errs)
	}
	if u := lines(t, out, "user"); len(u) != len(users) {
		t.Fatalf("%d user lines, want %d", len(u), len(users))
	}
	if code, out, _ := c.run(t, "verify", "--user", strings.Join(users, ",")); code != exitOK {
		t.Fatalf("verify after seeding: exit %d\n%s", code, out)
	}
}
