// Package metrics holds the replicator's Prometheus collectors. The replication code
// calls the methods of Replicator; cmd/replicator serves Handler on --metrics-addr. The
// manager's own metrics (pairs by condition, resync outcomes) live in controllers/.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "cyrusrepl_replicator"

// Replicator is the set of replicator-side collectors for one pair.
type Replicator struct {
	reg           *prometheus.Registry
	backlog       prometheus.Gauge
	batchDuration prometheus.Histogram
	usersSynced   prometheus.Counter
	userFailures  prometheus.Counter
	decisions     *prometheus.CounterVec
	mismatches    *prometheus.CounterVec
}

// NewReplicator creates the collectors on a fresh registry (with the Go and process
// collectors), labelled with the pair (and mode: rolling, audit, sync, verify).
func NewReplicator(pair, mode string) *Replicator {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"pair": pair, "mode": mode}
	r := &Replicator{
		reg: reg,
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "sync_log_backlog", ConstLabels: labels,
			Help: "Sync-log entries read from the master's channel and not yet replicated.",
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_duration_seconds", ConstLabels: labels,
			Help:    "Time to replicate one batch of users.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50ms .. ~7min
		}),
		usersSynced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "users_synced_total", ConstLabels: labels,
			Help: "Users replicated successfully (including those found equal).",
		}),
		userFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "user_sync_failures_total", ConstLabels: labels,
			Help: "Failed attempts to replicate a user (each is retried with backoff).",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "decisions_total", ConstLabels: labels,
			Help: "Folder decisions by action and evidence.",
		}, []string{"action", "evidence"}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "mismatches_total", ConstLabels: labels,
			Help: "Differences found between master and replica, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(r.backlog, r.batchDuration, r.usersSynced, r.userFailures, r.decisions, r.mismatches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// SetBacklog records the current sync-log backlog.
func (r *Replicator) SetBacklog(n int) { r.backlog.Set(float64(n)) }

// ObserveBatch records one batch's duration.
func (r *Replicator) ObserveBatch(d time.Duration) { r.batchDuration.Observe(d.Seconds()) }

// UserSynced counts a user replicated successfully.
func (r *Replicator) UserSynced() { r.usersSynced.Inc() }

// UserFailed counts a failed attempt on a user.
func (r *Replicator) UserFailed() { r.userFailures.Inc() }

// Decision counts one decision (report.Action, report.Evidence as strings).
func (r *Replicator) Decision(action, evidence string) {
	r.decisions.WithLabelValues(action, evidence).Inc()
}

// Mismatch counts one mismatch (report.MismatchKind as a string).
func (r *Replicator) Mismatch(kind string) { r.mismatches.WithLabelValues(kind).Inc() }

// Registry exposes the registry (for tests and extra collectors).
func (r *Replicator) Registry() *prometheus.Registry { return r.reg }

// Handler serves the metrics in the Prometheus text format.
func (r *Replicator) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}
