package csync_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// syntheticFullMailbox is a GET FULLMAILBOX data line with n records shaped like the
// real server's (flags, a keyword, the three virtual annotations).
func syntheticFullMailbox(n int) []byte {
	var b bytes.Buffer
	b.WriteString("MAILBOX %(UNIQUEID e2j6r8umxrvqf8xnjdp76s3t MBOXNAME user.fred.Big SYNC_CRC 1 SYNC_CRC_ANNOT 2 LAST_UID ")
	fmt.Fprintf(&b, "%d HIGHESTMODSEQ %d RECENTUID 0 RECENTTIME 0 LAST_APPENDDATE 1795919408 POP3_LAST_LOGIN 0 POP3_SHOW_AFTER 0 UIDVALIDITY 1795919370 PARTITION default ACL \"fred\tlrswipkxtecdan\t\" OPTIONS P QUOTAROOT user.fred CREATEDMODSEQ 1 FOLDERMODSEQ 1 RECORD (", n, n+1)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(' ')
		}
		flags := `\Seen`
		if i%3 == 0 {
			flags = `\Seen \Flagged $Label1`
		}
		fmt.Fprintf(&b, "%%(UID %d MODSEQ %d LAST_UPDATED 1795919408 FLAGS (%s) INTERNALDATE 1795919408 SIZE %d GUID %040x ANNOTATIONS (%%(ENTRY /vendor/cmu/cyrus-imapd/thrid USERID \"\" MODSEQ 0 VALUE %016x) %%(ENTRY /vendor/cmu/cyrus-imapd/savedate USERID \"\" MODSEQ 0 VALUE 1795919408) %%(ENTRY /vendor/cmu/cyrus-imapd/createdmodseq USERID \"\" MODSEQ 0 VALUE %d)))",
			i, i+1, flags, 1000+i, i*7919, i, i+1)
	}
	b.WriteString("))\r\n")
	return b.Bytes()
}

// BenchmarkDecodeFullMailbox: decoder throughput on a 10,000-record FULLMAILBOX reply.
func BenchmarkDecodeFullMailbox(b *testing.B) {
	line := syntheticFullMailbox(10_000)
	b.Run("dlist", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := csync.DecodeLine(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dlist+struct+crc", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			_, v, err := csync.DecodeLine(line)
			if err != nil {
				b.Fatal(err)
			}
			m, err := csync.ParseMailbox(v)
			if err != nil || len(m.Records) != 10_000 {
				b.Fatal(err)
			}
			_ = csync.SyncCRC(m.Records) ^ csync.SyncCRCAnnot(m.Records)
		}
	})
}

// vmHWM returns the peak resident set size of this process in kB.
func vmHWM(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseFloat(f[1], 64)
			return n
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkRelay streams 1,000 messages of ~50 KB (≈50 MB) from the master (GET FETCH)
// to the replica (APPLY MESSAGE), one open message at a time. It reports messages/s and
// the process's peak RSS, which must stay far below the 50 MB moved.
func BenchmarkRelay(b *testing.B) {
	const n, bodySize = 1000, 50_000
	p := cyruspair.Start(b, cyruspair.Options{})
	p.Master.CreateUser(b, "bench")
	line := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?+-*/=\r\n", bodySize/76)
	for batch := 0; batch < n/100; batch++ {
		msgs := make([][]byte, 100)
		for i := range msgs {
			msgs[i] = cyruspair.Message(fmt.Sprintf("relay %d", batch*100+i), line)
		}
		p.Master.DeliverMany(b, "bench", msgs)
	}
	for _, compress := range []bool{false, true} {
		name := "plain"
		if compress {
			name = "deflate"
		}
		b.Run(name, func(b *testing.B) { benchRelay(b, p, n, compress) })
	}
}

func benchRelay(b *testing.B, p *cyruspair.Pair, n int, compress bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	o := csync.Options{Username: p.ReplUser, Password: p.ReplPassword, Timeout: time.Minute, Compress: compress}
	m := dialMaster(b, p, o)
	r := dialReplica(b, p, o)
	mb, err := m.GetFullMailbox(ctx, "user.bench")
	if err != nil || len(mb.Records) != n {
		b.Fatalf("GET FULLMAILBOX: %d records, %v", len(mb.Records), err)
	}
	var total int64
	for _, rec := range mb.Records {
		total += int64(rec.Size)
	}
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM (Linux ≥ 4.0)
	b.SetBytes(total)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := r.Restart(ctx); err != nil { // drop what the previous round staged
			b.Fatal(err)
		}
		sent, err := r.ApplyMessage(ctx, relay(ctx, m, mb, mb.Records))
		if err != nil || sent != n {
			b.Fatalf("relayed %d of %d: %v", sent, n, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(vmHWM(b)/1024, "peakRSS-MB")
	b.ReportMetric(float64(total)/1e6, "MB-per-round")
}

// BenchmarkRealGetFullMailbox: GET FULLMAILBOX of one folder on the real master, by
// record count (CYRUSREPL_BENCH_RECORDS, default "100,1000,5000"). csync has no
// incremental read of a folder's records, so the replicator pays this for every update
// of a folder (sync_client reads its own index instead). Reports ms per call and µs per
// record; the server's time dominates (decode alone: BenchmarkDecodeFullMailbox).
func BenchmarkRealGetFullMailbox(b *testing.B) {
	p := cyruspair.Start(b, cyruspair.Options{})
	m := p.Master
	ctx := context.Background()
	conn, err := csync.DialMaster(ctx, m.SyncAddr, csync.Options{Username: p.ReplUser, Password: p.ReplPassword})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	have := 0
	m.CreateUser(b, "big")
	for _, f := range strings.Split(envOr("CYRUSREPL_BENCH_RECORDS", "100,1000,5000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= have {
			continue
		}
		var msgs [][]byte
		for i := have; i < n; i++ {
			msgs = append(msgs, cyruspair.Message(fmt.Sprintf("big %d", i), "a small body\n"))
		}
		m.DeliverMany(b, "big", msgs)
		have = n
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			var got int
			start := time.Now()
			for b.Loop() {
				mb, err := conn.GetFullMailbox(ctx, "user.big")
				if err != nil {
					b.Fatal(err)
				}
				got = len(mb.Records)
			}
			if got != n {
				b.Fatalf("%d records, want %d", got, n)
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/call")
			b.ReportMetric(float64(per.Nanoseconds())/1000/float64(n), "µs/record")
		})
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
