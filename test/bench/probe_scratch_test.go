package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

func BenchmarkProbeGetMailboxes(b *testing.B) {
	p := cyruspair.Start(b, cyruspair.Options{})
	m := p.Master
	for _, n := range []int{1000, 50000} {
		u := fmt.Sprintf("big%d", n)
		m.CreateUser(b, u)
		seedInbox(b, p, u, n)
	}
	conns, err := dialEnds(p, []*cyruspair.Instance{m})
	if err != nil {
		b.Fatal(err)
	}
	c := conns[0]
	ctx := context.Background()
	if os.Getenv("PROBE_WAIT") != "" {
		fmt.Println("attach now; sleeping", os.Getenv("PROBE_WAIT"))
		s, _ := strconv.Atoi(os.Getenv("PROBE_WAIT"))
		out, _ := exec.Command("sh", "-c", "ps -eo pid,args | grep sync | grep -v grep").CombinedOutput()
		fmt.Println(string(out))
		time.Sleep(time.Duration(s) * time.Second)
	}
	if os.Getenv("PROBE_PERF") != "" {
		out, _ := exec.Command("sh", "-c", "ps -eo pid,ppid,args | grep 'sync' | grep -v grep").CombinedOutput()
		fmt.Println(string(out))
		go func() { _ = exec.Command("sh", "-c", os.Getenv("PROBE_PERF")).Run() }()
		time.Sleep(time.Second)
		for range 600 {
			if _, err := c.GetMailboxes(ctx, []string{"user.big50000"}); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(3 * time.Second)
	}
	for _, n := range []int{1000, 50000, 1000, 50000} {
		name := fmt.Sprintf("user.big%d", n)
		var ds []time.Duration
		for range 30 {
			t := time.Now()
			if _, err := c.GetMailboxes(ctx, []string{name}); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(t))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		fmt.Printf("GET MAILBOXES %s: median %s min %s max %s\n", name, ds[15], ds[0], ds[29])
	}
}
