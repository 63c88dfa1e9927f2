package operator

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A resync whose pod cannot start must not sit in Running until the Job's deadline while
// it holds the pair's turn: the manager looks at the Job's pods and ends the resync with
// the kubelet's or scheduler's reason (see controllers, UserResyncReconciler.follow).

// UnschedulableGrace is how long a resync's pod may stay unschedulable before the
// resync fails: long enough for a scheduler retry, short enough to be seen within a
// minute. (A cluster autoscaler adding a node takes longer: such a resync fails and is
// created again once the node exists.)
const UnschedulableGrace = 45 * time.Second

// stuckWaiting are the container waiting reasons that need a person: the image cannot be
// pulled or the container cannot be created from the pod's spec. The kubelet retries them
// for ever. (ErrImagePull alone is the first attempt; ImagePullBackOff follows it.)
var stuckWaiting = map[string]bool{
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// PodStartFailure looks at the pods of a resync's Job and says why they cannot start
// ("" when nothing says so). recheck, when not zero, is when an unschedulable pod reaches
// UnschedulableGrace and should be looked at again.
func PodStartFailure(pods []corev1.Pod, now time.Time) (msg string, recheck time.Duration) {
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && stuckWaiting[w.Reason] {
				return trunc(fmt.Sprintf("pod %s: container %s: %s: %s", p.Name, cs.Name, w.Reason, w.Message), maxText*2), 0
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type != corev1.PodScheduled || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
				continue
			}
			since := c.LastTransitionTime.Time
			if since.IsZero() {
				since = p.CreationTimestamp.Time
			}
			if left := since.Add(UnschedulableGrace).Sub(now); left > 0 {
				if recheck == 0 || left < recheck {
					recheck = left
				}
				continue
			}
			return trunc(fmt.Sprintf("pod %s: %s for %s: %s", p.Name, c.Reason, now.Sub(since).Round(time.Second), c.Message), maxText*2), 0
		}
	}
	return "", recheck
}

// FailedCreateMessage words the Job controller's FailedCreate Event (a pod the API server
// refused: Pod Security admission, a ResourceQuota, a LimitRange, a webhook).
func FailedCreateMessage(job, note string) string {
	return trunc(fmt.Sprintf("job %s cannot create its pod: %s", job, note), maxText*2)
}
