package cyruspair

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// ManageSieve runs ManageSieve (RFC 5804) commands for user on the instance, each
// expected to answer OK, authenticating as the admin on the user's behalf; on a pair
// with TLS it runs STARTTLS first, verified against the pair's CA. A command may carry a
// literal ("PUTSCRIPT \"x\" {12+}\r\n...").
func (i *Instance) ManageSieve(t testing.TB, user string, cmds ...string) {
	t.Helper()
	if err := i.manageSieve(user, cmds); err != nil {
		t.Fatalf("%s: %v", i.Name, err)
	}
}

func (i *Instance) manageSieve(user string, cmds []string) error {
	raw, err := net.DialTimeout("tcp", i.SieveAddr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dial managesieve %s: %w", i.SieveAddr, err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return err
	}
	var conn net.Conn = raw
	r := bufio.NewReader(conn)
	expectOK := func(what string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("managesieve %s: %w", what, err)
			}
			switch {
			case strings.HasPrefix(line, "OK"):
				return nil
			case strings.HasPrefix(line, "NO"), strings.HasPrefix(line, "BYE"):
				return fmt.Errorf("managesieve %s: %s", what, strings.TrimSpace(line))
			}
		}
	}
	if err := expectOK("greeting"); err != nil {
		return err
	}
	if cfg := i.pair.ClientTLS(); cfg != nil {
		fmt.Fprintf(conn, "STARTTLS\r\n")
		if err := expectOK("STARTTLS"); err != nil {
			return err
		}
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("managesieve STARTTLS handshake: %w", err)
		}
		conn, r = tc, bufio.NewReader(tc)
		if err := expectOK("capabilities after STARTTLS"); err != nil { // RFC 5804 2.2
			return err
		}
	}
	auth := base64.StdEncoding.EncodeToString([]byte(user + "\x00" + i.pair.AdminUser + "\x00" + i.pair.AdminPassword))
	fmt.Fprintf(conn, "AUTHENTICATE \"PLAIN\" \"%s\"\r\n", auth)
	if err := expectOK("authenticate"); err != nil {
		return err
	}
	for _, cmd := range cmds {
		fmt.Fprintf(conn, "%s\r\n", cmd)
		if err := expectOK(firstWord(cmd)); err != nil {
			return err
		}
	}
	fmt.Fprintf(conn, "LOGOUT\r\n")
	return nil
}
