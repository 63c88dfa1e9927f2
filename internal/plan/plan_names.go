package plan

import (
	"fmt"

	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
)

// asideName is where a replica folder without evidence is moved when the master's folder
// needs its name: a sibling that names the replica's uniqueid, so it is unique and telling.
func asideName(name, uniqueid string) string {
	return fmt.Sprintf("%s-replica-%s", name, uniqueid)
}

// tempName is the transit name used to break rename cycles: under the user's INBOX.
func tempName(name, uniqueid string) string {
	n := mboxname.ParseName(name)
	if n.User == "" {
		return name + ".cyrusrepl-tmp-" + uniqueid
	}
	return mboxname.UserRoot(n.User) + ".cyrusrepl-tmp-" + uniqueid
}
