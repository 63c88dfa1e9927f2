package kubectlplugin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	replv1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time { return ptr.To(metav1.NewTime(t0.Add(d))) }

func TestProgressBarFromStatus(t *testing.T) {
	for _, c := range []struct {
		name string
		ps   replv1.ProgressStatus
		now  time.Duration
		want string
	}{
		{"running", replv1.ProgressStatus{UsersDone: 400, UsersTotal: 1000, UsersFailed: 2, Percent: 40, Bytes: 120 << 20,
			Started: at(0), Updated: at(time.Minute), ETA: at(150 * time.Second)}, 90 * time.Second,
			"[############..................]  40% 400/1000 users, 2 failed, 120.0 MiB at 2.0 MiB/s, ETA 1m0s"},
		{"ETA passed", replv1.ProgressStatus{UsersDone: 999, UsersTotal: 1000, Started: at(0), Updated: at(time.Minute), ETA: at(2 * time.Minute)}, 3 * time.Minute,
			"[#############################.]  99% 999/1000 users, 0 B, ETA 0s"},
		{"nothing done yet", replv1.ProgressStatus{UsersTotal: 1000, Started: at(0), Updated: at(time.Second)}, time.Minute,
			"[..............................]   0% 0/1000 users, 0 B, ETA unknown"},
		{"finished", replv1.ProgressStatus{UsersDone: 1000, UsersTotal: 1000, Percent: 100, Bytes: 3 << 30, Started: at(0), Updated: at(5 * time.Minute), Finished: true}, time.Hour,
			"[##############################] 100% 1000/1000 users, 3.0 GiB at 10.2 MiB/s, took 5m0s"},
	} {
		if got := ProgressBar(&c.ps, t0.Add(c.now)); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// `status` shows the pass as a bar, labelled Seeding while the pair seeds.
func TestRenderPairProgress(t *testing.T) {
	clock = func() time.Time { return t0.Add(90 * time.Second) }
	t.Cleanup(func() { clock = time.Now })
	pair := &replv1.ReplicationPair{ObjectMeta: metav1.ObjectMeta{Namespace: "mail", Name: "p"}}
	pair.Status.Progress = &replv1.ProgressStatus{UsersDone: 400, UsersTotal: 1000, Percent: 40, Started: at(0), Updated: at(time.Minute), ETA: at(150 * time.Second)}
	pair.Status.Conditions = []metav1.Condition{{Type: replv1.ConditionSeeding, Status: metav1.ConditionTrue, Reason: replv1.ReasonSeedingInProgress}}
	var out bytes.Buffer
	RenderPair(&out, pair)
	if !strings.Contains(out.String(), "Seeding:     [############..................]  40% 400/1000 users, 0 B, ETA 1m0s\n") {
		t.Fatalf("status while seeding:\n%s", out.String())
	}
	pair.Status.Conditions[0].Status = metav1.ConditionFalse
	out.Reset()
	RenderPair(&out, pair)
	if !strings.Contains(out.String(), "Progress:    [####") {
		t.Fatalf("status after seeding:\n%s", out.String())
	}
}

// Following a resync: elsewhere than on a terminal a line each time more users are
// done; on a terminal one line redrawn in place and ended before other output.
func TestBarLine(t *testing.T) {
	clock = func() time.Time { return t0 }
	t.Cleanup(func() { clock = time.Now })
	var out bytes.Buffer
	b := newBarLine(&out)
	one := &replv1.ProgressStatus{UsersDone: 1, UsersTotal: 3}
	b.show(nil)
	b.show(one)
	b.show(one)
	b.show(&replv1.ProgressStatus{UsersDone: 3, UsersTotal: 3, Finished: true})
	b.end()
	if got := strings.Count(out.String(), "progress: ["); got != 2 || !strings.Contains(out.String(), "1/3 users") || !strings.Contains(out.String(), "3/3 users") {
		t.Fatalf("not a terminal: %q", out.String())
	}
	out.Reset()
	tty := &barLine{w: &out, tty: true, last: -1}
	tty.show(one)
	tty.show(one)
	tty.end()
	tty.end()
	if got := out.String(); strings.Count(got, "\r") != 2 || strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\x1b[K\n") {
		t.Fatalf("terminal: %q", got)
	}
}

// TestResyncShowsProgress: `resync --wait` draws the resync's status.progress as the
// operator updates it, then the result.
func TestResyncShowsProgress(t *testing.T) {
	needEnvtest(t)
	ctx := context.Background()
	newPair(t, "default", "p4")
	out := &lockedBuffer{}
	p := &Plugin{Client: k8s, Out: out, Opts: Options{Namespace: "default", Wait: true, Timeout: 30 * time.Second, Poll: 20 * time.Millisecond}}
	done := make(chan int, 1)
	go func() {
		code, err := p.Run(ctx, "resync", []string{"p4", "alice", "bob", "carol"})
		if err != nil {
			t.Errorf("run: %v", err)
		}
		done <- code
	}()
	ur := waitForResync(ctx, t, func(u *replv1.UserResync) bool { return u.Spec.PairName == "p4" })
	now := metav1.Now()
	for _, n := range []int32{1, 2} {
		ur.Status = replv1.UserResyncStatus{Phase: replv1.ResyncRunning, StartTime: &now,
			Progress: &replv1.ProgressStatus{UsersDone: n, UsersTotal: 3, Started: &now, Updated: &now}}
		if err := k8s.Status().Update(ctx, ur); err != nil {
			t.Fatalf("status update: %v", err)
		}
		want := "progress: "
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), want) || !strings.Contains(out.String(), " "+string('0'+rune(n))+"/3 users") {
			if time.Now().After(deadline) {
				t.Fatalf("no progress line for %d/3 in:\n%s", n, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ur.Status = replv1.UserResyncStatus{Phase: replv1.ResyncSucceeded, StartTime: &now, CompletionTime: &now, UsersTotal: 3,
		Progress: &replv1.ProgressStatus{UsersDone: 3, UsersTotal: 3, Percent: 100, Started: &now, Updated: &now, Finished: true}}
	if err := k8s.Status().Update(ctx, ur); err != nil {
		t.Fatalf("status update: %v", err)
	}
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d\n%s", code, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("plugin did not return after the resync finished")
	}
	got := out.String()
	if strings.Count(got, "progress: ") != 3 || !strings.Contains(got, "3/3 users") || strings.Index(got, "3/3 users") > strings.Index(got, "Succeeded in") {
		t.Fatalf("output:\n%s", got)
	}
}
