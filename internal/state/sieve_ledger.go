package state

import "github.com/cyrusrepl/cyrusrepl/internal/plan"

// The ledger's Sieve part: the evidence that the master deleted a Sieve script. A script
// the replica holds and the master does not is deleted on the replica only when the
// ledger saw it on the master with the very content the replica still has; otherwise it
// was written on the replica (a split-brain) and is kept.

// RecordSieve notes the master's scripts of the user (nil meta: unknown, nothing noted);
// it reports whether anything changed. Scripts the master no longer has stay noted: they
// are the evidence of its delete.
func (u *UserLedger) RecordSieve(master *plan.Meta) bool {
	if master == nil {
		return false
	}
	changed := false
	for _, s := range master.Sieve {
		if s.Digest == "" {
			continue
		}
		if u.Sieve == nil {
			u.Sieve = map[string]string{}
		}
		if u.Sieve[s.Name] != s.Digest {
			u.Sieve[s.Name] = s.Digest
			changed = true
		}
	}
	return changed
}

// SieveOnMaster implements sieveLedger.
func (u *UserLedger) SieveOnMaster(user, name string) (string, bool) {
	if u.User != user {
		return "", false
	}
	d, ok := u.Sieve[name]
	return d, ok
}

// SieveOnMaster implements sieveLedger.
func (ls Ledgers) SieveOnMaster(user, name string) (string, bool) {
	for _, u := range ls {
		if d, ok := u.SieveOnMaster(user, name); ok {
			return d, true
		}
	}
	return "", false
}
