package controllers

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/cyrusrepl/cyrusrepl/api/v1alpha1"
)

// warningNotes lists the notes of the Warning Events with reason on an object.
func warningNotes(ctx context.Context, ns string, uid types.UID, reason string) ([]string, error) {
	var list eventsv1.EventList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.UID == uid && e.Reason == reason && e.Type == corev1.EventTypeWarning {
			notes = append(notes, e.Note)
		}
	}
	return notes, nil
}

// TestPairPlaintextWarning: a pair whose replica asks for tls.mode None shows the
// PlaintextPassword condition and one Warning Event saying the password crosses the
// network in clear; both go once the spec asks for TLS again.
func TestPairPlaintextWarning(t *testing.T) {
	ctx := needEnv(t)
	ns := newNamespace(t, ctx)
	pair := newPair(ns, "clear")
	pair.Spec.Replica.TLS = &v1.TLSConfig{Mode: v1.TLSModeNone}
	createPair(t, ctx, pair)
	const msg = "spec.replica.tls.mode is None: the replicator's password for the replica crosses the network in clear"
	eventually(t, "PlaintextPassword condition", func() error {
		p, err := getPair(ctx, ns, pair.Name)
		if err != nil {
			return err
		}
		if c := cond(p.Status.Conditions, v1.ConditionPlaintextPassword); c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonPlaintextRequested || c.Message != msg {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	eventually(t, "one Warning Event", func() error {
		notes, err := warningNotes(ctx, ns, pair.UID, v1.ReasonPlaintextRequested)
		if err != nil {
			return err
		}
		if len(notes) != 1 || notes[0] != msg {
			return fmt.Errorf("events %q", notes)
		}
		return nil
	})
	d, err := getDeployment(ctx, ns, pair.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !containsSeq(d.Spec.Template.Spec.Containers[0].Args, "--replica-tls", "none") {
		t.Fatalf("replicator args %q lack --replica-tls none", d.Spec.Template.Spec.Containers[0].Args)
	}

	p, err := getPair(ctx, ns, pair.Name)
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Replica.TLS = &v1.TLSConfig{Mode: v1.TLSModeStartTLS}
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "PlaintextPassword gone", func() error {
		p, err := getPair(ctx, ns, pair.Name)
		if err != nil {
			return err
		}
		if c := cond(p.Status.Conditions, v1.ConditionPlaintextPassword); c.Type != "" {
			return fmt.Errorf("still %+v", c)
		}
		return nil
	})
}

func containsSeq(args []string, a, b string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == a && args[i+1] == b {
			return true
		}
	}
	return false
}
