package replication

import (
	"fmt"
	"testing"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// putSieve uploads and activates a sieve script for user through the instance's
// ManageSieve service (RFC 5804), authenticating as the admin on the user's behalf.
func putSieve(t *testing.T, p *cyruspair.Pair, in *cyruspair.Instance, user, name, script string) {
	t.Helper()
	in.ManageSieve(t, user, putScript(name, script), fmt.Sprintf("SETACTIVE \"%s\"", name))
}
