package agent

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// metrics are the agent's counters, written by hand in the Prometheus text format.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]uint64
	leases   map[string]uint64
	held     bool
}

type reqKey struct {
	endpoint string
	code     int
}

func newMetrics() *metrics {
	return &metrics{requests: map[reqKey]uint64{}, leases: map[string]uint64{}}
}

func (m *metrics) request(endpoint string, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[reqKey{endpoint, code}]++
}

func (m *metrics) lease(result string, held bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[result]++
	m.held = held
}

// write writes every metric; backlog and since are the channel's pending entries.
func (m *metrics) write(w io.Writer, backlog int, since, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	age := 0.0
	if !since.IsZero() {
		age = max(now.Sub(since).Seconds(), 0)
	}
	held := 0
	if m.held {
		held = 1
	}
	gauge(w, "cyrusrepl_agent_backlog_entries", "Entries in the channel's log and log-run, not yet acknowledged.", float64(backlog))
	gauge(w, "cyrusrepl_agent_oldest_pending_seconds", "Age of the oldest pending entry (0: none).", age)
	gauge(w, "cyrusrepl_agent_lease_held", "1 while a lease on the channel is out.", float64(held))
	fmt.Fprintf(w, "# HELP cyrusrepl_agent_leases_total Leases granted, and how they ended (acked, lost, expired).\n# TYPE cyrusrepl_agent_leases_total counter\n")
	for _, r := range []string{"granted", "acked", "lost", "expired"} {
		fmt.Fprintf(w, "cyrusrepl_agent_leases_total{result=%q} %d\n", r, m.leases[r])
	}
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].endpoint != keys[j].endpoint {
			return keys[i].endpoint < keys[j].endpoint
		}
		return keys[i].code < keys[j].code
	})
	for _, name := range []string{"requests", "errors"} {
		fmt.Fprintf(w, "# HELP cyrusrepl_agent_%s_total API %s answered, by endpoint and status code.\n# TYPE cyrusrepl_agent_%s_total counter\n", name, name, name)
		for _, k := range keys {
			if name == "errors" && k.code < 400 {
				continue
			}
			fmt.Fprintf(w, "cyrusrepl_agent_%s_total{endpoint=%q,code=\"%d\"} %d\n", name, k.endpoint, k.code, m.requests[k])
		}
	}
}

func gauge(w io.Writer, name, help string, v float64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
}
