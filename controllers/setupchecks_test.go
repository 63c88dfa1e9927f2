package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// The replicator's set-up checks reach the pair: a channel the master never writes
// (the replicator refused to start and published why) stalls it, naming the setting;
// version skew and a partition the replica lacks are Warning conditions naming the
// versions and the partition; a later report finding them fixed clears them.
func TestPairSetupChecks(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "chk"))
	eventually(t, "role bound", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "chk-replicator"}, &rbacv1.RoleBinding{})
	})
	sink := replicatorSink(t, ns, "chk", operator.ReportConfigMapName("chk"))
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	publish := func(checks ...report.Check) {
		t.Helper()
		backlog := 0
		s := &report.Summary{Kind: report.SummaryKind, Mode: "rolling", Pair: "chk", Started: t0, Updated: t0,
			Backlog: &backlog, Checks: checks}
		if err := sink.Publish(ctx, s); err != nil {
			t.Fatalf("publish as the replicator: %v", err)
		}
	}
	waitCond := func(what, condType, st, reason string, says ...string) *v1.ReplicationPair {
		t.Helper()
		var p *v1.ReplicationPair
		eventually(t, what, func() (err error) {
			if p, err = getPair(ctx, ns, "chk"); err != nil {
				return err
			}
			c := apimeta.FindStatusCondition(p.Status.Conditions, condType)
			if st == "" {
				if c != nil {
					return fmt.Errorf("%s still there: %+v", condType, c)
				}
				return nil
			}
			if c == nil || string(c.Status) != st || c.Reason != reason {
				return fmt.Errorf("%s = %+v", condType, c)
			}
			for _, s := range says {
				if !strings.Contains(c.Message, s) {
					return fmt.Errorf("%s message %q does not say %q", condType, c.Message, s)
				}
			}
			return nil
		})
		return p
	}

	// The replicator refused: its pod never becomes available (no markAvailable).
	publish(report.Check{Name: report.CheckSyncLog, Status: report.CheckFailed, Reason: report.ReasonSyncLogNotWritten,
		Setting: "sync_log_channels", Message: `sync_log_channels is "squatter" in the master's imapd.conf and does not list channel cyrusrepl`})
	p := waitCond("stalled", v1.ConditionStalled, "True", v1.ReasonSyncLogNotWritten, "sync_log_channels", "cyrusrepl")
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionReady); c == nil || c.Status != "False" || c.Reason != v1.ReasonSyncLogNotWritten {
		t.Errorf("Ready = %+v", c)
	}
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionReconciling); c != nil {
		t.Errorf("Reconciling = %+v, want none (kstatus Failed, not InProgress)", c)
	}
	if got := kstatusOf(t, p); got != status.FailedStatus {
		t.Errorf("kstatus = %s, want Failed", got)
	}
	waitWarning(t, ns, p, v1.ReasonSyncLogNotWritten)

	// Fixed: the replicator runs, and reports version skew and a partition the replica lacks.
	markAvailable(t, ctx, ns, "chk")
	publish(
		report.Check{Name: report.CheckSyncLog, Status: report.CheckOK, Message: "the master writes channel cyrusrepl"},
		report.Check{Name: report.CheckVersions, Status: report.CheckWarning, Reason: report.ReasonVersionSkew,
			Message: "the master runs Cyrus 3.8.0 and the replica Cyrus 3.6.1-Debian-3.6.1-4+deb12u5: different releases are supported only for the length of an upgrade"},
		report.Check{Name: report.CheckPartitions, Status: report.CheckWarning, Reason: report.ReasonPartitionMissing,
			Message: `the master keeps folders on partitions the replica lacks: partition "second" (1 users: bob)`},
	)
	waitCond("stall cleared", v1.ConditionStalled, "", "")
	waitCond("version skew", v1.ConditionVersionSkew, "True", v1.ReasonVersionSkew, "3.8.0", "3.6.1")
	p = waitCond("partition missing", v1.ConditionPartitionMissing, "True", v1.ReasonPartitionMissing, `"second"`, "bob")
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ConditionReady); c == nil || c.Status != "True" {
		t.Errorf("Ready = %+v: warnings must not make the pair unready", c)
	}
	waitWarning(t, ns, p, v1.ReasonVersionSkew)
	waitWarning(t, ns, p, v1.ReasonPartitionMissing)

	// Both fixed.
	publish(
		report.Check{Name: report.CheckVersions, Status: report.CheckOK, Message: "master Cyrus 3.6.1, replica Cyrus 3.6.1"},
		report.Check{Name: report.CheckPartitions, Status: report.CheckOK, Message: "no user fails for a partition the replica lacks"},
	)
	waitCond("versions match", v1.ConditionVersionSkew, "False", v1.ReasonSameRelease)
	p = waitCond("partitions present", v1.ConditionPartitionMissing, "False", v1.ReasonPartitionsPresent)
	if got := kstatusOf(t, p); got != status.CurrentStatus {
		t.Errorf("kstatus = %s, want Current", got)
	}
}

// waitWarning waits for exactly one Warning Event with reason about p.
func waitWarning(t *testing.T, ns string, p *v1.ReplicationPair, reason string) {
	t.Helper()
	ctx := t.Context()
	eventually(t, reason+" Warning Event", func() error {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		n := 0
		for _, e := range list.Items {
			if e.Regarding.UID == p.UID && e.Reason == reason && e.Type == corev1.EventTypeWarning {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%d %s events", n, reason)
		}
		return nil
	})
}
