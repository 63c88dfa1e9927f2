package replication

// The ledger's Sieve part: the evidence that the master deleted a Sieve script. A script
// the replica holds and the master does not is deleted on the replica only when the
// ledger saw it on the master with the very content the replica still has; otherwise it
// was written on the replica (a split-brain) and is kept.

// sieveLedger is the optional part of a LedgerView that knows the master's scripts.
type sieveLedger interface {
	// SieveOnMaster returns the digest of user's script name when last seen on the master.
	SieveOnMaster(user, name string) (digest string, ok bool)
}

// RecordSieve notes the master's scripts of the user (nil meta: unknown, nothing noted);
// it reports whether anything changed. Scripts the master no longer has stay noted: they
// are the evidence of its delete.
func (u *UserLedger) RecordSieve(master *Meta) bool {
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

// sieveOnMaster asks the batch's ledger for the master's digest of a script.
func (e *Evidence) sieveOnMaster(user, name string) (string, bool) {
	if sl, ok := e.Ledger.(sieveLedger); ok {
		return sl.SieveOnMaster(user, name)
	}
	return "", false
}

// noteSieve records the master's Sieve scripts of l's user in the user's ledger, under
// its lock (like noteInLedger for folders), and leaves l as written.
func (x *Executor) noteSieve(l *UserLedger, master *Meta) error {
	if master == nil {
		return nil
	}
	fresh, err := x.Ledger.Update(l.User, func(u *UserLedger) bool { return u.RecordSieve(master) })
	if err != nil {
		return err
	}
	*l = *fresh
	return nil
}
