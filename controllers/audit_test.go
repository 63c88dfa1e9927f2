package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// auditsOf lists the Audit UserResyncs of a pair.
func auditsOf(t *testing.T, ns, pair string) []v1.UserResync {
	t.Helper()
	var list v1.UserResyncList
	if err := k8s.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{operator.LabelPair: pair}); err != nil {
		t.Fatal(err)
	}
	var out []v1.UserResync
	for _, rs := range list.Items {
		if rs.Spec.Mode == v1.ResyncAudit {
			out = append(out, rs)
		}
	}
	return out
}

// annotateAudit sets the pair's auditRequestedAt annotation.
func annotateAudit(t *testing.T, key client.ObjectKey, v string) {
	t.Helper()
	updatePair(t, t.Context(), key, func(p *v1.ReplicationPair) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[v1.AnnotationAuditRequestedAt] = v
	})
}

// auditHandled waits until status.audit echoes v and the pair has n Audit resyncs.
func auditHandled(t *testing.T, ns, name, v string, n int) *v1.AuditStatus {
	t.Helper()
	var as *v1.AuditStatus
	eventually(t, "audit request "+v+" handled", func() error {
		p, err := getPair(t.Context(), ns, name)
		if err != nil {
			return err
		}
		if as = p.Status.Audit; as == nil || as.LastHandledRequestAt != v {
			return fmt.Errorf("status.audit %+v", as)
		}
		if got := len(auditsOf(t, ns, name)); got != n {
			return fmt.Errorf("%d audits, want %d", got, n)
		}
		return nil
	})
	return as
}

// TestAuditRequestedAt: each new value of the auditRequestedAt annotation creates one
// Audit UserResync of every master user, owned by the pair, echoed into
// status.audit.lastHandledRequestAt; its Job runs one audit pass (no --interval) with the
// pair's master user source and state claim. The same value again creates nothing.
func TestAuditRequestedAt(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "aud")
	pair.Spec.Master.IMAPPort = 993 // rolling pair whose users are listed over IMAP
	createPair(t, ctx, pair)
	key := client.ObjectKey{Namespace: ns, Name: "aud"}

	annotateAudit(t, key, "2026-12-06T12:00:00Z")
	as := auditHandled(t, ns, "aud", "2026-12-06T12:00:00Z", 1)
	rs := auditsOf(t, ns, "aud")[0]
	p, _ := getPair(ctx, ns, "aud")
	if rs.Name != as.LastResync || len(rs.Spec.Users) != 0 || rs.Spec.PairName != "aud" || !metav1.IsControlledBy(&rs, p) {
		t.Fatalf("audit %s (status.audit %+v): spec %+v owners %v", rs.Name, as, rs.Spec, rs.OwnerReferences)
	}
	waitPhase(t, ctx, ns, rs.Name, v1.ResyncRunning)
	job, err := getJob(ctx, ns, rs.Name)
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	args := pod.Containers[0].Args
	if args[0] != "audit" || slices.Contains(args, "--interval") || slices.Contains(args, "--user") ||
		!strings.Contains(strings.Join(args, " "), "--master-imap cyrus-master.mail.svc:993") {
		t.Fatalf("audit Job args %q", args)
	}
	claim := false
	for _, v := range pod.Volumes {
		if pvc := v.PersistentVolumeClaim; pvc != nil && pvc.ClaimName == operator.StateClaimName("aud") {
			claim = true
		}
	}
	if !claim || !strings.Contains(strings.Join(args, " "), "--state-dir ") {
		t.Fatalf("audit Job does not use the pair's state claim: volumes %+v args %q", pod.Volumes, args)
	}

	// The same value re-applied (a GitOps tool) creates nothing; a new one one more.
	annotateAudit(t, key, "2026-12-06T12:00:00Z")
	time.Sleep(2 * time.Second)
	auditHandled(t, ns, "aud", "2026-12-06T12:00:00Z", 1)
	finishJob(t, ctx, ns, rs.Name, true)
	waitPhase(t, ctx, ns, rs.Name, v1.ResyncSucceeded)
	annotateAudit(t, key, "2026-12-06T13:00:00Z")
	auditHandled(t, ns, "aud", "2026-12-06T13:00:00Z", 2)
}

// TestAuditRequestedAtWithoutUserSource: a pair that cannot list its master's users
// (a sync log, neither masterConfig nor master.imapPort) runs no audit and says why.
func TestAuditRequestedAtWithoutUserSource(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	createPair(t, ctx, newPair(ns, "nosrc"))
	annotateAudit(t, client.ObjectKey{Namespace: ns, Name: "nosrc"}, "now")
	as := auditHandled(t, ns, "nosrc", "now", 0)
	if !strings.Contains(as.Message, "spec.masterConfig or spec.master.imapPort") || as.LastResync != "" {
		t.Fatalf("status.audit %+v", as)
	}
}
