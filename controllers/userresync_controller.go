package controllers

import (
	"context"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
	"github.com/cyrusrepl/cyrusrepl/internal/operator"
)

// pairNameField indexes UserResyncs by spec.pairName.
const pairNameField = ".spec.pairName"

// UserResyncReconciler runs each UserResync once, as a Job, one at a time per pair
// (oldest first), and folds the result into the resync's status, then deletes the Job.
type UserResyncReconciler struct {
	Client client.Client
	// APIReader reads without the cache; the "whose turn is it" check uses it so that two
	// resyncs of a pair never start together on a stale cache.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Pod holds the manager-wide replicator pod settings (image, host network).
	Pod   operator.PodOptions
	Clock clock.PassiveClock

	events *reportEvents
}

// +kubebuilder:rbac:groups=replication.cyrusrepl.io,resources=userresyncs,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=list
// +kubebuilder:rbac:groups=replication.cyrusrepl.io,resources=userresyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete

// Reconcile moves a resync along Pending → Running → Succeeded/Failed.
func (r *UserResyncReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var rs v1.UserResync
	if err := r.Client.Get(ctx, req.NamespacedName, &rs); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get resync: %w", err)
	}
	if !rs.DeletionTimestamp.IsZero() {
		r.events.seen.forget(rs.UID)
		return ctrl.Result{}, nil
	}
	base := rs.DeepCopy()

	var next stepResult
	var err error
	switch {
	case rs.Status.Phase.Terminal():
		// Done for good: re-applying the same manifest changes nothing and runs nothing.
		// Once its time to live is over the resync goes, with what it owns.
		expired, left := r.expired(&rs)
		if expired {
			return ctrl.Result{}, r.deleteExpired(ctx, &rs)
		}
		next.requeue = left
		next.cleanup = r.deleteJob(&rs)
	default:
		next, err = r.step(ctx, &rs)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(base.Status, rs.Status) {
		// Optimistic lock: a decision made on a stale cached copy (e.g. "the Job is gone,
		// so the run is lost" right after this resync's own Failed status and Job
		// deletion) must not overwrite the recorded outcome; the conflict requeues.
		if err := r.Client.Status().Patch(ctx, &rs, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: time.Second}, nil // read afresh, then decide again
			}
			return ctrl.Result{}, fmt.Errorf("patch resync status: %w", err)
		}
		if rs.Status.Phase.Terminal() && !base.Status.Phase.Terminal() {
			resyncOutcomes.WithLabelValues(string(rs.Spec.Mode), string(rs.Status.Phase), conditionReason(&rs)).Inc()
			r.Recorder.Eventf(&rs, nil, eventType(rs.Status.Phase), v1.EventResyncFinished, "Resync", "%s: %s", rs.Status.Phase, conditionMessage(&rs))
		}
		if c := operator.NewStall(base.Status.Conditions, rs.Status.Conditions, v1.ReasonReferenceMissing); c != nil {
			if err := r.events.warnCondition(ctx, &rs, "UserResync", "Resync", c); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "announce missing references")
			}
		}
	}
	// Only once the result is recorded may the Job go.
	if next.cleanup != nil {
		if err := next.cleanup(ctx); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: next.requeue}, nil
}

// stepResult is what a step leaves to do after the status write: a cleanup (deleting a
// finished Job) and when to look again.
type stepResult struct {
	cleanup func(context.Context) error
	requeue time.Duration
}

// step handles a non-terminal resync.
func (r *UserResyncReconciler) step(ctx context.Context, rs *v1.UserResync) (stepResult, error) {
	if rs.Status.Phase == "" {
		operator.SetResyncPhase(rs, v1.ResyncPending, v1.ReasonWaitingForTurn, "queued")
	}
	var job batchv1.Job
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: operator.JobName(rs.Name)}, &job)
	switch {
	case err == nil:
		if !metav1.IsControlledBy(&job, rs) {
			return stepResult{}, fmt.Errorf("job %s exists and is not controlled by this resync", job.Name)
		}
		return r.follow(ctx, rs, &job)
	case !apierrors.IsNotFound(err):
		return stepResult{}, fmt.Errorf("get job: %w", err)
	case rs.Status.Phase == v1.ResyncRunning:
		return r.follow(ctx, rs, nil) // the Job vanished
	}
	return stepResult{}, r.maybeStart(ctx, rs)
}

// follow folds the report of a running (or vanished) Job and detects its end.
func (r *UserResyncReconciler) follow(ctx context.Context, rs *v1.UserResync, job *batchv1.Job) (stepResult, error) {
	rr, err := readReport(ctx, r.Client, rs.Namespace, operator.ReportConfigMapName(rs.Name))
	if err != nil {
		return stepResult{}, err
	}
	if rr.invalid != nil {
		ctrl.LoggerFrom(ctx).Info("report configmap holds no valid report", "error", rr.invalid.Error())
	}
	sum := rr.summary
	phase, reason, msg, done := operator.ResyncOutcome(rs, job, sum)
	var next stepResult
	if sum != nil {
		// The last fold of a resync sends what is pending at once: nothing folds it later.
		wait, err := r.events.emit(ctx, rs, "UserResync", rs.Status.Report, sum, done)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "announce report records") // retried on the next fold
		}
		next.requeue = wait
		operator.FoldResyncReport(&rs.Status, sum)
		operator.SetResyncCheckConditions(rs, sum)
	}
	if job != nil {
		rs.Status.JobName = job.Name
		if rs.Status.StartTime == nil {
			t := job.CreationTimestamp
			rs.Status.StartTime = &t
		}
	}
	if !done {
		if job != nil && !operator.JobPodRunning(job) {
			return r.notStarted(ctx, rs, job, next)
		}
		operator.SetResyncPhase(rs, v1.ResyncRunning, v1.ReasonJobRunning, fmt.Sprintf("job %s is running", rs.Status.JobName))
		return next, nil
	}
	operator.SetResyncPhase(rs, phase, reason, msg)
	now := metav1.NewTime(r.Clock.Now())
	rs.Status.CompletionTime = &now
	next.cleanup = r.deleteJob(rs)
	return next, nil
}

// maybeStart starts the resync's Job when the pair exists, every Secret and ConfigMap its
// pods mount exists, and no other resync of the pair is running or older and still
// waiting. A Job is not created while a reference is missing: its pod could not start,
// yet the Job would hold the pair's turn and run down its deadline.
func (r *UserResyncReconciler) maybeStart(ctx context.Context, rs *v1.UserResync) error {
	var pair v1.ReplicationPair
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Spec.PairName}, &pair); err != nil {
		if apierrors.IsNotFound(err) {
			operator.SetResyncPhase(rs, v1.ResyncPending, v1.ReasonWaitingForPair,
				fmt.Sprintf("ReplicationPair %q does not exist", rs.Spec.PairName))
			return nil
		}
		return fmt.Errorf("get pair: %w", err)
	}
	missing, err := missingReferences(ctx, r.Client, rs.Namespace, operator.PairReferences(&pair))
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		operator.SetResyncStalled(rs, v1.ResyncPending, v1.ReasonReferenceMissing,
			fmt.Sprintf("ReplicationPair %q: %s; the Job starts once they exist", pair.Name, operator.ReferenceMessage(missing)))
		return nil
	}
	if f := operator.DisallowedVolumes(&pair, r.Pod.AllowHostPath); len(f) > 0 {
		operator.SetResyncStalled(rs, v1.ResyncPending, v1.ReasonVolumeNotAllowed,
			fmt.Sprintf("ReplicationPair %q: %s", pair.Name, operator.VolumeMessage(f)))
		return nil
	}
	blocker, err := r.blocker(ctx, rs)
	if err != nil {
		return err
	}
	if blocker != "" {
		operator.SetResyncPhase(rs, v1.ResyncPending, v1.ReasonWaitingForTurn, "waiting for "+blocker)
		return nil
	}
	owner := operator.ResyncOwner(rs, pair.Name)
	for _, o := range []client.Object{
		operator.ServiceAccount(owner), operator.Role(owner), operator.RoleBinding(owner), operator.ReportConfigMap(owner),
	} {
		if err := apply(ctx, r.Client, o); err != nil {
			return err
		}
	}
	job := operator.Job(rs, &pair, r.Pod)
	if err := r.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create job: %w", err)
	}
	now := metav1.NewTime(r.Clock.Now())
	rs.Status.JobName = job.Name
	rs.Status.StartTime = &now
	operator.SetResyncPhase(rs, v1.ResyncRunning, v1.ReasonJobRunning, fmt.Sprintf("job %s is running", job.Name))
	what := fmt.Sprintf("%d users", len(rs.Spec.Users))
	if rs.Spec.Mode == v1.ResyncAudit {
		what = "every user of the master"
	}
	r.Recorder.Eventf(rs, job, corev1.EventTypeNormal, v1.EventResyncStarted, "Resync",
		"started job %s: %s of %s", job.Name, rs.Spec.Mode, what)
	return nil
}

// blocker names a resync of the same pair that must finish first: one running, or one
// older (creation time, then name) still waiting; or a live resync Job of the pair. It
// reads from the API server, not the cache.
func (r *UserResyncReconciler) blocker(ctx context.Context, rs *v1.UserResync) (string, error) {
	var list v1.UserResyncList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(rs.Namespace)); err != nil {
		return "", fmt.Errorf("list resyncs: %w", err)
	}
	var others []v1.UserResync
	for _, o := range list.Items {
		if o.UID != rs.UID && o.Spec.PairName == rs.Spec.PairName && !o.Status.Phase.Terminal() && o.DeletionTimestamp.IsZero() {
			others = append(others, o)
		}
	}
	sort.Slice(others, func(i, j int) bool { return older(&others[i], &others[j]) })
	for i := range others {
		o := &others[i]
		if o.Status.Phase == v1.ResyncRunning || older(o, rs) {
			return "UserResync " + o.Name, nil
		}
	}
	var jobs batchv1.JobList
	if err := r.APIReader.List(ctx, &jobs, client.InNamespace(rs.Namespace),
		client.MatchingLabels{operator.LabelPair: rs.Spec.PairName, operator.LabelComponent: "resync"}); err != nil {
		return "", fmt.Errorf("list jobs: %w", err)
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if finished, _, _ := operator.JobFinished(j); !finished && j.DeletionTimestamp.IsZero() && !metav1.IsControlledBy(j, rs) {
			return "Job " + j.Name, nil
		}
	}
	return "", nil
}

func older(a, b *v1.UserResync) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// notStarted handles a running resync whose Job has no running pod yet. A pod that
// waits for its volumes is Stalled with the missing Secrets or ConfigMaps named (it
// starts by itself once they exist; the Job's activeDeadlineSeconds still bounds the
// wait). A pod that cannot start for another reason (image, scheduling, admission)
// would sit there until the Job's deadline, holding the pair's turn: the resync ends
// now, with the cause, and its Job goes, freeing the pair.
func (r *UserResyncReconciler) notStarted(ctx context.Context, rs *v1.UserResync, job *batchv1.Job, next stepResult) (stepResult, error) {
	missing, err := missingReferences(ctx, r.Client, rs.Namespace, operator.PodReferences(&job.Spec.Template.Spec))
	if err != nil {
		return stepResult{}, err
	}
	if len(missing) > 0 {
		operator.SetResyncStalled(rs, v1.ResyncRunning, v1.ReasonReferenceMissing,
			fmt.Sprintf("the pod of job %s cannot start: %s", job.Name, operator.ReferenceMessage(missing)))
		return next, nil
	}
	msg, recheck, err := r.podStartFailure(ctx, rs, job)
	if err != nil {
		return stepResult{}, err
	}
	if msg == "" {
		operator.SetResyncPhase(rs, v1.ResyncRunning, v1.ReasonJobRunning, fmt.Sprintf("job %s is running", rs.Status.JobName))
		next.requeue = minWait(next.requeue, recheck)
		return next, nil
	}
	operator.SetResyncPhase(rs, v1.ResyncFailed, v1.ReasonPodCannotStart, msg+"; create a new UserResync once this is fixed")
	now := metav1.NewTime(r.Clock.Now())
	rs.Status.CompletionTime = &now
	next.cleanup = r.deleteJob(rs)
	return next, nil
}

// noPodRecheck is how often a Job without any pod is looked at again for the Job
// controller's FailedCreate Events (Events are not watched).
const noPodRecheck = 15 * time.Second

// podStartFailure says why the Job's pod cannot start ("" when nothing says so): from
// the pods' status (image pull, unschedulable), or, when the Job has no pod at all, from
// the Job controller's FailedCreate Events (admission, quota). recheck is when to look
// again.
func (r *UserResyncReconciler) podStartFailure(ctx context.Context, rs *v1.UserResync, job *batchv1.Job) (string, time.Duration, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(rs.Namespace), client.MatchingLabels{operator.LabelResync: rs.Name}); err != nil {
		return "", 0, fmt.Errorf("list pods: %w", err)
	}
	if len(pods.Items) > 0 {
		msg, recheck := operator.PodStartFailure(pods.Items, r.Clock.Now())
		return msg, recheck, nil
	}
	var evs corev1.EventList
	if err := r.APIReader.List(ctx, &evs, client.InNamespace(rs.Namespace), client.MatchingFields{
		"involvedObject.uid": string(job.UID), "reason": "FailedCreate",
	}); err != nil {
		return "", 0, fmt.Errorf("list events of job %s: %w", job.Name, err)
	}
	var newest *corev1.Event
	for i := range evs.Items {
		if e := &evs.Items[i]; newest == nil || eventTime(e).After(eventTime(newest)) {
			newest = e
		}
	}
	if newest != nil {
		return operator.FailedCreateMessage(job.Name, newest.Message), 0, nil
	}
	return "", noPodRecheck, nil
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func minWait(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// expired says whether a finished resync outlived spec.ttlSecondsAfterFinished, or how
// long it has left.
func (r *UserResyncReconciler) expired(rs *v1.UserResync) (bool, time.Duration) {
	if rs.Status.CompletionTime == nil {
		return false, 0
	}
	ttl := time.Duration(ptr.Deref(rs.Spec.TTLSecondsAfterFinished, v1.DefaultResyncTTLSeconds)) * time.Second
	left := rs.Status.CompletionTime.Add(ttl).Sub(r.Clock.Now())
	return left <= 0, left
}

// deleteExpired deletes a resync whose time to live is over; its report ConfigMap,
// ServiceAccount, Role, RoleBinding and any Job left go with it (owner references, in
// the background).
func (r *UserResyncReconciler) deleteExpired(ctx context.Context, rs *v1.UserResync) error {
	err := r.Client.Delete(ctx, rs, client.Preconditions{UID: &rs.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete expired resync: %w", err)
	}
	ctrl.LoggerFrom(ctx).Info("deleted finished resync after its ttlSecondsAfterFinished")
	return nil
}

// deleteJob returns a cleanup deleting the resync's Job (and its pods).
func (r *UserResyncReconciler) deleteJob(rs *v1.UserResync) func(context.Context) error {
	return func(ctx context.Context) error {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: operator.JobName(rs.Name)}}
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(job), job); apierrors.IsNotFound(err) {
			return nil // already gone (cache read: no API call for finished resyncs)
		}
		err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete finished job: %w", err)
		}
		return nil
	}
}

func eventType(p v1.ResyncPhase) string {
	if p == v1.ResyncFailed {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}

func conditionReason(rs *v1.UserResync) string {
	for _, c := range rs.Status.Conditions {
		if c.Type == v1.ConditionReady {
			return c.Reason
		}
	}
	return ""
}

func conditionMessage(rs *v1.UserResync) string {
	for _, c := range rs.Status.Conditions {
		if c.Type == v1.ConditionReady {
			return c.Message
		}
	}
	return ""
}

// SetupWithManager registers the reconciler: changes to a resync or its Job reconcile
// it; a change to any resync of a pair (one finishing), to the pair itself, or to a
// Secret or ConfigMap the pair references wakes the pair's waiting resyncs. It needs the
// pairRefField index (see Setup).
func (r *UserResyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.events = newReportEvents(r.Client)
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.UserResync{}, pairNameField,
		func(o client.Object) []string { return []string{o.(*v1.UserResync).Spec.PairName} }); err != nil {
		return fmt.Errorf("index resyncs by pair: %w", err)
	}
	byPair := func(ctx context.Context, ns, pair string) []reconcile.Request {
		var list v1.UserResyncList
		if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{pairNameField: pair}); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, o := range list.Items {
			if !o.Status.Phase.Terminal() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&o)})
			}
		}
		return reqs
	}
	byReference := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		pairs, err := pairsReferencing(ctx, r.Client, referenceKind(o), o)
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "map reference to pairs")
			return nil
		}
		var reqs []reconcile.Request
		for i := range pairs {
			reqs = append(reqs, byPair(ctx, pairs[i].Namespace, pairs[i].Name)...)
		}
		return reqs
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1.UserResync{}).
		Owns(&batchv1.Job{}).
		// A resync's pods (owned by its Job) say why the Job cannot start.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if name := o.GetLabels()[operator.LabelResync]; name != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
			}
			return nil
		})).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&v1.UserResync{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return byPair(ctx, o.GetNamespace(), o.(*v1.UserResync).Spec.PairName)
		})).
		Watches(&v1.ReplicationPair{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return byPair(ctx, o.GetNamespace(), o.GetName())
		})).
		Watches(&corev1.Secret{}, byReference, builder.WithPredicates(referenceChanged)).
		Watches(&corev1.ConfigMap{}, byReference, builder.WithPredicates(referenceChanged)).
		Named("userresync").
		// One worker: "whose turn is it" is decided by one reconcile at a time, so two
		// resyncs of a pair can never both see the other as not running.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}
