package executor

import (
	"github.com/cyrusrepl/cyrusrepl/internal/plan"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// noteSieve records the master's Sieve scripts of l's user in the user's ledger, under
// its lock (like noteInLedger for folders), and leaves l as written.
func (x *Executor) noteSieve(l *state.UserLedger, master *plan.Meta) error {
	if master == nil {
		return nil
	}
	fresh, err := x.Ledger.Update(l.User, func(u *state.UserLedger) bool { return u.RecordSieve(master) })
	if err != nil {
		return err
	}
	*l = *fresh
	return nil
}
