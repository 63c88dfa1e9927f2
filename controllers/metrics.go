package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// Manager metrics, served on the manager's metrics endpoint.
var resyncOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "cyrusrepl_resyncs_finished_total",
	Help: "UserResyncs that reached a terminal phase, by mode, phase and reason.",
}, []string{"mode", "phase", "reason"})

// pairConditions reports, at scrape time, how many pairs have each condition in each
// status, read from the manager's cache (no API call).
type pairConditions struct {
	reader client.Reader
	desc   *prometheus.Desc
}

func (p *pairConditions) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p *pairConditions) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list v1.ReplicationPairList
	if err := p.reader.List(ctx, &list); err != nil {
		ch <- prometheus.NewInvalidMetric(p.desc, err)
		return
	}
	type key struct{ cond, status string }
	n := map[key]int{}
	for _, types := range []string{v1.ConditionReady, v1.ConditionInSync, v1.ConditionSplitBrainSuspected, v1.ConditionStalled, v1.ConditionReconciling} {
		for _, s := range []string{"True", "False", "Unknown"} {
			n[key{types, s}] = 0
		}
	}
	for _, pair := range list.Items {
		for _, c := range pair.Status.Conditions {
			n[key{c.Type, string(c.Status)}]++
		}
	}
	for k, v := range n {
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, float64(v), k.cond, k.status)
	}
}

// managerCollectors are the manager's own metrics (docs/operations.md lists them).
func managerCollectors(reader client.Reader) []prometheus.Collector {
	pc := &pairConditions{reader: reader, desc: prometheus.NewDesc("cyrusrepl_pairs",
		"ReplicationPairs by condition type and status.", []string{"condition", "status"}, nil)}
	return []prometheus.Collector{resyncOutcomes, pc}
}

// RegisterMetrics registers the manager's collectors with controller-runtime's registry.
// reader should be the manager's cached client.
func RegisterMetrics(reader client.Reader) error {
	for _, c := range managerCollectors(reader) {
		if err := metrics.Registry.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				return err
			}
		}
	}
	return nil
}
