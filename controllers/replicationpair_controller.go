package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// ReplicationPairReconciler runs one replicator Deployment per pair and folds the
// replicator's report ConfigMap into the pair's status. It is the only writer of that
// status.
type ReplicationPairReconciler struct {
	Client client.Client
	// Pod holds the manager-wide replicator pod settings (image, host network).
	Pod operator.PodOptions
	// Clock decides when scheduled verifies are due (a test sets its own).
	Clock clock.PassiveClock
	// APIReader reads past the cache: the metadata of a Secret or ConfigMap the cache
	// does not hold yet. Nil: Client.
	APIReader client.Reader

	events *reportEvents
}

// +kubebuilder:rbac:groups=replication.cyrusrepl.io,resources=replicationpairs,verbs=get;list;watch
// +kubebuilder:rbac:groups=replication.cyrusrepl.io,resources=replicationpairs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

func (r *ReplicationPairReconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// Reconcile applies the pair's owned objects and refreshes its status.
func (r *ReplicationPairReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	var pair v1.ReplicationPair
	if err := r.Client.Get(ctx, req.NamespacedName, &pair); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get pair: %w", err)
	}
	if !pair.DeletionTimestamp.IsZero() {
		r.events.seen.forget(pair.UID)
		return ctrl.Result{}, nil // owned objects go with it (owner references); a retained state claim stays
	}
	base := pair.DeepCopy()

	refs := operator.PairReferences(&pair)
	found, revs, err := readReferences(ctx, r.Client, pair.Namespace, refs)
	if err != nil {
		return ctrl.Result{}, err
	}
	missing := operator.MissingReferences(refs, found)
	rev, revOK, err := referencesRevision(ctx, r.apiReader(), pair.Namespace, refs, found, revs)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.applyOwned(ctx, &pair, rev, revOK); err != nil {
		return ctrl.Result{}, err
	}
	obs, err := r.observe(ctx, &pair)
	if err != nil {
		return ctrl.Result{}, err
	}
	obs.MissingReferences = missing
	if obs.ReportErr != nil {
		log.Info("report configmap holds no valid report", "error", obs.ReportErr.Error())
	}
	verify, wake, err := r.verify(ctx, &pair)
	if err != nil {
		return ctrl.Result{}, err
	}
	audit, auditRetry := r.audit(ctx, &pair)
	pair.Status = operator.PairStatus(&pair, obs)
	pair.Status.Verify = verify
	pair.Status.Audit = audit
	operator.FitStatus(&pair.Status, &pair.Status.Report, nil, operator.StatusBudget)
	res := ctrl.Result{RequeueAfter: soonest(wake, auditRetry)} // the next scheduled verify, a failed audit request
	if obs.Report != nil {
		wait, err := r.events.emit(ctx, &pair, "ReplicationPair", base.Status.Report, obs.Report, false)
		if err != nil {
			log.Error(err, "announce report records") // retried on the next fold
		}
		res.RequeueAfter = soonest(res.RequeueAfter, wait) // a summary held back by its interval
	}
	// No write when nothing changed: GitOps tools and watchers see no churn.
	if equality.Semantic.DeepEqual(base.Status, pair.Status) {
		return res, nil
	}
	// Optimistic lock: status.state carries the state's history (which id replaced
	// which), so a status folded from a stale read of the pair must not be written; a
	// conflict is retried (with backoff) on a fresh read.
	if err := r.Client.Status().Patch(ctx, &pair, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, fmt.Errorf("patch pair status: %w", err)
	}
	r.announceConditions(ctx, base, &pair)
	return res, nil
}

// soonest returns the earlier of two requeue delays, zero meaning none.
func soonest(a, b time.Duration) time.Duration {
	if b > 0 && (a == 0 || b < a) {
		return b
	}
	return a
}

// announceConditions sends one Warning Event for each condition needing a person that
// the status just written made true. Announced once the condition is recorded; a lost
// Event is not retried (the condition stays), like the Events an EventRecorder sends.
func (r *ReplicationPairReconciler) announceConditions(ctx context.Context, base, pair *v1.ReplicationPair) {
	log := ctrl.LoggerFrom(ctx)
	for _, reason := range []string{v1.ReasonReferenceMissing, v1.ReasonVolumeNotAllowed, v1.ReasonSyncLogNotWritten} {
		if c := operator.NewStall(base.Status.Conditions, pair.Status.Conditions, reason); c != nil {
			if err := r.events.warnCondition(ctx, pair, "ReplicationPair", "Reconcile", c); err != nil {
				log.Error(err, "announce stall", "reason", reason)
			}
		}
	}
	if c := operator.NewTrue(base.Status.Conditions, pair.Status.Conditions, v1.ConditionPlaintextPassword, v1.ReasonPlaintextRequested); c != nil {
		if err := r.events.warnCondition(ctx, pair, "ReplicationPair", "Reconcile", c); err != nil {
			log.Error(err, "announce plaintext")
		}
	}
	for _, cr := range operator.WarningCheckConditions() {
		if c := operator.NewlyTrue(base.Status.Conditions, pair.Status.Conditions, cr[0], cr[1]); c != nil {
			if err := r.events.warnCondition(ctx, pair, "ReplicationPair", "Replicate", c); err != nil {
				log.Error(err, "announce set-up check", "condition", cr[0])
			}
		}
	}
	if c := operator.NewTrue(base.Status.Conditions, pair.Status.Conditions, v1.ConditionStateLost, v1.ReasonStateLost); c != nil {
		if err := r.events.warnCondition(ctx, pair, "ReplicationPair", "Replicate", c); err != nil {
			log.Error(err, "announce state loss")
		}
	}
}

// applyOwned applies the pair's objects. The Deployment is applied even while a Secret
// or ConfigMap it mounts is missing (status says so): its pod then waits for its volumes
// and the kubelet starts it as soon as they exist, with no step of the manager; and a
// Secret deleted under a running replicator does not stop it.
//
// The pod template carries rev, the revision of the mounted objects, so a rotated
// password or CA rolls the replicator. Without one (revOK false: an object or key is
// missing) the template keeps the revision it has: a roll then would only replace a
// running pod with one that cannot start.
func (r *ReplicationPairReconciler) applyOwned(ctx context.Context, pair *v1.ReplicationPair, rev string, revOK bool) error {
	if err := ensureStateClaim(ctx, r.Client, pair); err != nil {
		return err
	}
	owner := operator.PairOwner(pair)
	dep := operator.Deployment(pair, r.Pod)
	if !revOK {
		var cur appsv1.Deployment
		err := r.Client.Get(ctx, client.ObjectKeyFromObject(dep), &cur)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("get deployment: %w", err)
		}
		rev = cur.Spec.Template.Annotations[operator.AnnotationReferencesRevision]
	}
	operator.SetReferencesRevision(dep, rev)
	objs := []client.Object{
		operator.ServiceAccount(owner),
		operator.Role(owner),
		operator.RoleBinding(owner),
		operator.ReportConfigMap(owner),
	}
	if len(operator.DisallowedVolumes(pair, r.Pod.AllowHostPath)) > 0 {
		if err := r.deleteDeployment(ctx, pair); err != nil {
			return err
		}
	} else {
		objs = append(objs, dep)
	}
	for _, o := range objs {
		if err := apply(ctx, r.Client, o); err != nil {
			return err
		}
	}
	return nil
}

// deleteDeployment removes the pair's Deployment, if any: a pair whose volumes the
// manager may not mount gets no pod, even one created before (status says why).
func (r *ReplicationPairReconciler) deleteDeployment(ctx context.Context, pair *v1.ReplicationPair) error {
	var dep appsv1.Deployment
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: pair.Namespace, Name: operator.ReplicatorName(pair.Name)}, &dep)
	if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(&dep, pair)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment: %w", err)
	}
	if err := r.Client.Delete(ctx, &dep, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete deployment: %w", err)
	}
	return nil
}

func (r *ReplicationPairReconciler) observe(ctx context.Context, pair *v1.ReplicationPair) (operator.PairObservation, error) {
	var obs operator.PairObservation
	var dep appsv1.Deployment
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: pair.Namespace, Name: operator.ReplicatorName(pair.Name)}, &dep)
	switch {
	case err == nil:
		obs.Deployment = &dep
	case !apierrors.IsNotFound(err):
		return obs, fmt.Errorf("get deployment: %w", err)
	}
	obs.DisallowedVolumes = operator.DisallowedVolumes(pair, r.Pod.AllowHostPath)
	rr, err := readReport(ctx, r.Client, pair.Namespace, operator.ReportConfigMapName(pair.Name))
	obs.Report, obs.ReportErr = rr.summary, rr.invalid
	return obs, err
}

// reportRead is what a report ConfigMap held: a summary, or why it is unusable, or
// neither (missing ConfigMap, or no report yet).
type reportRead struct {
	summary *report.Summary
	invalid error
}

// readReport reads and decodes a report ConfigMap. Only a failure to read is an error;
// a malformed report is reported in reportRead.invalid.
func readReport(ctx context.Context, c client.Client, ns, name string) (reportRead, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return reportRead{}, nil
		}
		return reportRead{}, fmt.Errorf("get report configmap: %w", err)
	}
	s, err := operator.ParseReport(cm.Data)
	switch {
	case errors.Is(err, operator.ErrNoReport):
		return reportRead{}, nil
	case err != nil:
		return reportRead{invalid: err}, nil
	}
	return reportRead{summary: s}, nil
}

// SetupWithManager registers the reconciler. Spec changes (generation) of the pair, any
// change of its Deployment or report ConfigMap, and any write of a Secret or ConfigMap it
// references, trigger a reconcile; the pair's own
// status writes do not. It needs the pairRefField index (see Setup).
func (r *ReplicationPairReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.events = newReportEvents(r.Client)
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	referencing := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		pairs, err := pairsReferencing(ctx, r.Client, referenceKind(o), o)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "map reference to pairs")
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(pairs))
		for i := range pairs {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pairs[i])})
		}
		return reqs
	})
	return ctrl.NewControllerManagedBy(mgr).
		// Annotations too: verifyRequestedAt asks for a verify.
		For(&v1.ReplicationPair{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(claimToPair)).
		Watches(&corev1.Secret{}, referencing, builder.WithPredicates(referenceWritten)).
		Watches(&corev1.ConfigMap{}, referencing, builder.WithPredicates(referenceWritten)).
		Named("replicationpair").
		Complete(r)
}
