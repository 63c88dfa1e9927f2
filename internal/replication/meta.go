package replication

import (
	"sort"

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
		if !want[q.Root] && UserOf(q.Root) == u {
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
		if r, ok := have[s.UniqueID]; ok && r == s {
			continue
		}
		s := s
		p.out.Actions = append(p.out.Actions, Action{Op: OpSeen, User: u, UniqueID: s.UniqueID, Seen: &s})
		p.metaDiff(u, "seen "+s.UniqueID)
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
		}
	}
}

func (p *planner) sieve(u string, mm, rm *Meta) {
	have := map[string]SieveScript{}
	replicaActive := false
	for _, s := range rm.Sieve {
		have[s.Name] = s
		replicaActive = replicaActive || s.Active
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
	}
	for _, s := range rm.Sieve {
		if !want[s.Name] {
			s := s
			p.out.Actions = append(p.out.Actions, Action{Op: OpUnsieve, User: u, Sieve: &s})
			p.metaDiff(u, "replica-only sieve "+s.Name)
		}
	}
	if replicaActive && !masterActive {
		p.out.Actions = append(p.out.Actions, Action{Op: OpUnactivateSieve, User: u})
	}
}
