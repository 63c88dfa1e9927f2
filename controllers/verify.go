package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// +kubebuilder:rbac:groups=replication.cyrusrepl.io,resources=userresyncs,verbs=create

// maxRequestAt is status.verify.lastHandledRequestAt's length limit.
const maxRequestAt = 256

// createRetry is when a verify the manager could not create is tried again.
const createRetry = time.Minute

// verify creates the verify UserResyncs spec.verify asks for: one per new value of the
// verifyRequestedAt annotation, and one per due schedule time unless the previous verify
// is still running. It returns the new status.verify and when the next scheduled run is
// due (zero: none).
func (r *ReplicationPairReconciler) verify(ctx context.Context, pair *v1.ReplicationPair) (*v1.VerifyStatus, time.Duration, error) {
	spec := pair.Spec.Verify
	if spec == nil {
		return nil, 0, nil
	}
	now := time.Now()
	if r.Clock != nil {
		now = r.Clock.Now()
	}
	vs := &v1.VerifyStatus{}
	if pair.Status.Verify != nil {
		vs = pair.Status.Verify.DeepCopy()
	}
	if req := truncate(pair.Annotations[v1.AnnotationVerifyRequestedAt], maxRequestAt); req != "" && req != vs.LastHandledRequestAt {
		name := operator.RequestedVerifyName(pair.Name, req)
		if err := r.createVerify(ctx, pair, name, operator.TriggerRequest); err != nil {
			// Said in status, tried again; the pair's own reconcile goes on.
			vs.Message = truncate(err.Error(), 512)
			return vs, createRetry, nil
		}
		vs.LastHandledRequestAt, vs.LastResync = req, name
	}
	if spec.Schedule == "" {
		vs.LastScheduleTime, vs.Message = nil, ""
		return vs, 0, nil
	}
	sched, err := operator.ParseSchedule(spec.Schedule)
	if err != nil {
		vs.Message = truncate(err.Error(), 512)
		return vs, 0, nil
	}
	last := pair.CreationTimestamp.Time
	if vs.LastScheduleTime != nil {
		last = vs.LastScheduleTime.Time
	}
	due, ok, next := operator.DueRun(sched, last, now)
	if ok {
		vs.Message = ""
		switch running, err := r.verifyRunning(ctx, pair.Namespace, vs.LastResync); {
		case err != nil:
			return nil, 0, err
		case pair.Spec.Suspend:
			vs.Message = fmt.Sprintf("run of %s skipped: the pair is suspended", due.UTC().Format(time.RFC3339))
		case running:
			vs.Message = fmt.Sprintf("run of %s skipped: UserResync %s has not finished", due.UTC().Format(time.RFC3339), vs.LastResync)
		default:
			name := operator.ScheduledVerifyName(pair.Name, due)
			if err := r.createVerify(ctx, pair, name, operator.TriggerSchedule); err != nil {
				vs.Message = truncate(err.Error(), 512)
				return vs, createRetry, nil // the run stays due
			}
			vs.LastResync = name
		}
		t := metav1.NewTime(due)
		vs.LastScheduleTime = &t
	}
	wake := time.Duration(0)
	if !next.IsZero() {
		wake = next.Sub(now)
	}
	return vs, wake, nil
}

// createVerify creates one verify UserResync; one that exists already (a retried
// reconcile) is fine.
func (r *ReplicationPairReconciler) createVerify(ctx context.Context, pair *v1.ReplicationPair, name, trigger string) error {
	rs := operator.VerifyResync(pair, name, trigger)
	if err := r.Client.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create verify %s: %w", name, err)
	}
	ctrl.LoggerFrom(ctx).Info("created verify", "userresync", name, "trigger", trigger)
	return nil
}

// verifyRunning says whether the named UserResync exists and has not finished.
func (r *ReplicationPairReconciler) verifyRunning(ctx context.Context, ns, name string) (bool, error) {
	if name == "" {
		return false, nil
	}
	var rs v1.UserResync
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &rs); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get userresync %s: %w", name, err)
	}
	return !rs.Status.Phase.Terminal(), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
