package plan

// userLedger answers like state.UserLedger (the planner's tests cannot import the state
// package, which imports this one): the in-step marks, the uniqueids seen on the master
// and the master's Sieve scripts of one user.
type userLedger struct {
	User    string
	Entries map[string]ledgerEntry
	Sieve   map[string]string
}

type ledgerEntry struct {
	Name   string
	InStep *FolderMark
}

func (u *userLedger) SeenOnMaster(uid string) (string, bool) {
	e, ok := u.Entries[uid]
	return e.Name, ok
}

func (u *userLedger) LastInStep(uid string) (FolderMark, bool) {
	if e, ok := u.Entries[uid]; ok && e.InStep != nil {
		return *e.InStep, true
	}
	return FolderMark{}, false
}

func (u *userLedger) SieveOnMaster(user, name string) (string, bool) {
	if u.User != user {
		return "", false
	}
	d, ok := u.Sieve[name]
	return d, ok
}

// userLedgers is a batch's ledgers, like state.Ledgers.
type userLedgers []*userLedger

func (ls userLedgers) SeenOnMaster(uid string) (string, bool) {
	for _, u := range ls {
		if n, ok := u.SeenOnMaster(uid); ok {
			return n, true
		}
	}
	return "", false
}

func (ls userLedgers) LastInStep(uid string) (FolderMark, bool) {
	for _, u := range ls {
		if m, ok := u.LastInStep(uid); ok {
			return m, true
		}
	}
	return FolderMark{}, false
}

func (ls userLedgers) SieveOnMaster(user, name string) (string, bool) {
	for _, u := range ls {
		if d, ok := u.SieveOnMaster(user, name); ok {
			return d, true
		}
	}
	return "", false
}
