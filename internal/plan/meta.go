package plan

import (
	"sort"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
)

// meta plans quota, seen, subscriptions and sieve for every batch user whose master
// meta is known. A user the master does not know has no meta and is left alone.
func (p *planner) meta() {
	users := make([]string, 0, len(p.inBatch))
	for u := range p.inBatch {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		mm := p.in.Master.Meta[u]
		if mm == nil {
			continue
		}
		rm := p.in.Replica.Meta[u]
		if rm == nil {
			rm = &Meta{}
		}
		p.quotas(u, mm, rm)
		p.seen(u, mm, rm)
		p.subs(u, mm, rm)
		p.sieve(u, mm, rm)
	}
}

func (p *planner) metaDiff(u, detail string) {
	p.out.Mismatches = append(p.out.Mismatches, report.Mismatch{
		ID:   report.RecordID(p.in.Pair, u, detail, p.in.Now.UnixNano()),
		Time: p.in.Now, Pair: p.in.Pair, User: u, Kind: report.MismatchContentDiffers, Detail: detail,
	})
}

func (p *planner) quotas(u string, mm, rm *Meta) {
	have := map[string]Quota{}
	for _, q := range rm.Quotas {
		have[q.Root] = q
	}
	want := map[string]bool{}
	for _, q := range mm.Quotas {
		want[q.Root] = true
		if r, ok := have[q.Root]; ok && r.key() == q.key() {
			continue
		}
		q := q
		p.out.Actions = append(p.out.Actions, Action{Op: OpQuota, User: u, Quota: &q})
		p.metaDiff(u, "quota "+q.Root)
	}
	for _, q := range rm.Quotas {
		if !want[q.Root] && mboxname.UserOf(q.Root) == u {
			q := q
			p.out.Actions = append(p.out.Actions, Action{Op: OpUnquota, User: u, Quota: &q})
			p.metaDiff(u, "replica-only quota "+q.Root)
		}
	}
}

func (p *planner) seen(u string, mm, rm *Meta) {
	have := map[string]Seen{}
	for _, s := range rm.Seen {
		have[s.UniqueID] = s
	}
	for _, s := range mm.Seen {
		r, ok := have[s.UniqueID]
		if ok && r == s {
			continue
		}
		s := s
		p.out.Actions = append(p.out.Actions, Action{Op: OpSeen, User: u, UniqueID: s.UniqueID, Seen: &s})
		p.metaDiff(u, "seen "+s.UniqueID)
		if ok {
			p.metaDecide(u, report.ActionUpdate, report.EvidenceNone, "seen "+s.UniqueID,
				"the replica's seen state differs; the master's overwrites it (seen state is not merged)")
		}
	}
}

func (p *planner) subs(u string, mm, rm *Meta) {
	have := map[string]bool{}
	for _, s := range rm.Subs {
		have[s] = true
	}
	want := map[string]bool{}
	for _, s := range mm.Subs {
		want[s] = true
		if !have[s] {
			p.out.Actions = append(p.out.Actions, Action{Op: OpSub, User: u, Sub: s})
			p.metaDiff(u, "subscription "+s)
		}
	}
	for _, s := range rm.Subs {
		if !want[s] {
			p.out.Actions = append(p.out.Actions, Action{Op: OpUnsub, User: u, Sub: s})
			p.metaDiff(u, "replica-only subscription "+s)
			p.metaDecide(u, report.ActionDelete, report.EvidenceNone, "subscription "+s,
				"subscribed on the replica only; the master's subscription list is authoritative (no mail is involved)")
		}
	}
}

// sieve plans the user's Sieve scripts. The master's scripts are copied; a script the
// replica alone holds is deleted only on evidence that the master deleted it (the ledger
// saw it on the master with the content the replica still has), else kept, like mail.
func (p *planner) sieve(u string, mm, rm *Meta) {
	have := map[string]SieveScript{}
	for _, s := range rm.Sieve {
		have[s.Name] = s
	}
	want := map[string]bool{}
	masterActive := false
	for _, s := range mm.Sieve {
		want[s.Name] = true
		masterActive = masterActive || s.Active
		if r, ok := have[s.Name]; ok && r == s {
			continue
		}
		s := s
		p.out.Actions = append(p.out.Actions, Action{Op: OpSieve, User: u, Sieve: &s})
		p.metaDiff(u, "sieve "+s.Name)
		if r, ok := have[s.Name]; ok && r.Digest != s.Digest && p.sieveWrittenOnReplica(u, r) {
			p.metaDecide(u, report.ActionUpdate, report.EvidenceSplitBrain, "sieve "+s.Name,
				"the replica's copy changed since the master's was last seen; the master's version overwrites it")
		}
	}
	keptActive := false
	for _, s := range rm.Sieve {
		if want[s.Name] {
			continue
		}
		s := s
		p.metaDiff(u, "replica-only sieve "+s.Name)
		if p.sieveWrittenOnReplica(u, s) {
			keptActive = keptActive || s.Active
			p.out.Kept++
			p.metaDecide(u, report.ActionKeep, report.EvidenceNone, "sieve "+s.Name,
				"replica-only Sieve script the master never had with this content: kept (split-brain suspect)")
			continue
		}
		p.out.Actions = append(p.out.Actions, Action{Op: OpUnsieve, User: u, Sieve: &s})
		p.metaDecide(u, report.ActionDelete, report.EvidenceLedger, "sieve "+s.Name,
			"seen on the master with this content, now gone there: the master deleted it")
	}
	p.sieveActive(u, rm, masterActive, keptActive)
}

// sieveActive deactivates the replica's script when the master has none active, unless
// the active one is a kept replica-only script.
func (p *planner) sieveActive(u string, rm *Meta, masterActive, keptActive bool) {
	replicaActive := false
	for _, s := range rm.Sieve {
		replicaActive = replicaActive || s.Active
	}
	switch {
	case keptActive && masterActive:
		p.metaDecide(u, report.ActionUpdate, report.EvidenceSplitBrain, "sieve activation",
			"the replica's active script is a kept replica-only one; the master's active script is activated instead")
	case replicaActive && !masterActive && !keptActive:
		p.out.Actions = append(p.out.Actions, Action{Op: OpUnactivateSieve, User: u})
	}
}

// sieveWrittenOnReplica reports whether the replica's script s holds content the master
// was never seen with under its name (no ledger, or no digest: assume so).
func (p *planner) sieveWrittenOnReplica(u string, s SieveScript) bool {
	d, ok := p.in.Evidence.sieveOnMaster(u, s.Name)
	return !ok || s.Digest == "" || d != s.Digest
}

// metaDecide records a decision about a user's meta data; subject names what (a Sieve
// script, a subscription, a seen state) in the replica name field.
func (p *planner) metaDecide(u string, a report.Action, ev report.Evidence, subject, reason string) {
	p.out.Decisions = append(p.out.Decisions, report.Decision{
		ID:   report.RecordID(p.in.Pair, u, subject, a, p.in.Now.UnixNano()),
		Time: p.in.Now, Pair: p.in.Pair, User: u, ReplicaName: subject, Action: a, Evidence: ev, Reason: reason,
	})
}
