package operator

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodStartFailure(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	waiting := func(reason string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "replicator", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "why"}},
		}}}}
	}
	unschedulable := func(since time.Duration) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "no nodes", LastTransitionTime: metav1.NewTime(now.Add(-since)),
		}}}}
	}
	for _, tc := range []struct {
		name    string
		pod     corev1.Pod
		want    string
		recheck time.Duration
	}{
		{"image pull back-off", waiting("ImagePullBackOff"), "ImagePullBackOff: why", 0},
		{"first pull error waits for the back-off", waiting("ErrImagePull"), "", 0},
		{"creating", waiting("ContainerCreating"), "", 0},
		{"config error", waiting("CreateContainerConfigError"), "CreateContainerConfigError", 0},
		{"unschedulable, within the grace", unschedulable(15 * time.Second), "", UnschedulableGrace - 15*time.Second},
		{"unschedulable past the grace", unschedulable(time.Minute), "Unschedulable for 1m0s: no nodes", 0},
	} {
		msg, recheck := PodStartFailure([]corev1.Pod{tc.pod}, now)
		if (tc.want == "") != (msg == "") || !strings.Contains(msg, tc.want) || recheck != tc.recheck {
			t.Errorf("%s: %q recheck %v, want %q recheck %v", tc.name, msg, recheck, tc.want, tc.recheck)
		}
	}
}
