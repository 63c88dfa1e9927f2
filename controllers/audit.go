package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// audit creates the Audit UserResync the auditRequestedAt annotation asks for: one per
// new value, echoed into status.audit.lastHandledRequestAt. It returns the new
// status.audit (nil: never asked) and when to try again after a failed create.
func (r *ReplicationPairReconciler) audit(ctx context.Context, pair *v1.ReplicationPair) (*v1.AuditStatus, time.Duration) {
	req := truncate(pair.Annotations[v1.AnnotationAuditRequestedAt], maxRequestAt)
	if pair.Status.Audit == nil && req == "" {
		return nil, 0
	}
	as := &v1.AuditStatus{}
	if pair.Status.Audit != nil {
		as = pair.Status.Audit.DeepCopy()
	}
	if req == "" || req == as.LastHandledRequestAt {
		return as, 0
	}
	if !operator.HasMasterUsers(pair) {
		// Handled: retrying cannot help until the spec changes, and a new value then asks again.
		as.LastHandledRequestAt = req
		as.Message = "request " + req + " not run: an audit lists the master's users; set spec.master.agent, spec.masterConfig or spec.master.imapPort"
		return as, 0
	}
	name := operator.RequestedAuditName(pair.Name, req)
	rs := operator.AuditResync(pair, name)
	if err := r.Client.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
		// Said in status, tried again; the pair's own reconcile goes on.
		as.Message = truncate(fmt.Sprintf("create audit %s: %v", name, err), 512)
		return as, createRetry
	}
	ctrl.LoggerFrom(ctx).Info("created audit", "userresync", name, "requestedAt", req)
	as.LastHandledRequestAt, as.LastResync, as.Message = req, name, ""
	return as, 0
}
