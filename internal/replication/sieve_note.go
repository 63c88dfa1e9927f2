package replication

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
