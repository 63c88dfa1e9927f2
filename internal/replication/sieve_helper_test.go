package replication

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/testutil/cyruspair"
)

// putSieve uploads and activates a sieve script for user through the instance's
// ManageSieve service (RFC 5804), authenticating as the admin on the user's behalf.
func putSieve(t *testing.T, p *cyruspair.Pair, in *cyruspair.Instance, user, name, script string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", in.SieveAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	expectOK := func(what string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("managesieve %s: %v", what, err)
			}
			switch {
			case strings.HasPrefix(line, "OK"):
				return
			case strings.HasPrefix(line, "NO"), strings.HasPrefix(line, "BYE"):
				t.Fatalf("managesieve %s: %s", what, line)
			}
		}
	}
	expectOK("greeting")
	auth := base64.StdEncoding.EncodeToString([]byte(user + "\x00" + p.AdminUser + "\x00" + p.AdminPassword))
	fmt.Fprintf(c, "AUTHENTICATE \"PLAIN\" \"%s\"\r\n", auth)
	expectOK("authenticate")
	fmt.Fprintf(c, "PUTSCRIPT \"%s\" {%d+}\r\n%s\r\n", name, len(script), script)
	expectOK("putscript")
	fmt.Fprintf(c, "SETACTIVE \"%s\"\r\n", name)
	expectOK("setactive")
	fmt.Fprintf(c, "LOGOUT\r\n")
}
