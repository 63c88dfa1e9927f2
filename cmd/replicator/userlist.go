package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"
)

// listUsersIMAP lists the master's users through its IMAP service, as the csync admin:
// LIST "" "user<sep>%" names every user's INBOX. It is what audit mode uses when the
// master's mailboxes.db is not at hand (no --master-config, as in a pod whose image has
// no Cyrus tools). Read-only: LIST is the only command sent after authentication.
// tlsCfg nil is plaintext; else TLS from the first byte (implicit, IMAPS) or STARTTLS.
func listUsersIMAP(ctx context.Context, addr, user, password string, tlsCfg *tls.Config, implicit bool, timeout time.Duration) ([]string, error) {
	d := net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if tlsCfg != nil && implicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("master imap %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	greeting, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "* OK") {
		return nil, fmt.Errorf("master imap %s: no greeting (%q): %v", addr, strings.TrimSpace(greeting), err)
	}
	tag := 0
	cmd := func(format string, args ...any) ([]string, error) {
		tag++
		t := fmt.Sprintf("u%d", tag)
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintf(conn, t+" "+format+"\r\n", args...); err != nil {
			return nil, err
		}
		var untagged []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("master imap %s: %w", addr, err)
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(line, "* "):
				untagged = append(untagged, line[2:])
			case strings.HasPrefix(line, t+" OK"):
				return untagged, nil
			case strings.HasPrefix(line, t+" "):
				return nil, fmt.Errorf("master imap %s: %s", addr, strings.TrimPrefix(line, t+" "))
			}
		}
	}
	if tlsCfg != nil && !implicit {
		if _, err := cmd("STARTTLS"); err != nil {
			return nil, err
		}
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("master imap %s: tls: %w", addr, err)
		}
		conn, r = tc, bufio.NewReader(tc)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if _, err := cmd("AUTHENTICATE PLAIN %s", ir); err != nil {
		return nil, fmt.Errorf("authenticating %q: %w", user, err)
	}
	sep := "."
	if lines, err := cmd(`LIST "" ""`); err == nil {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "LIST" {
				if s := strings.Trim(f[len(f)-2], `"`); len(s) == 1 {
					sep = s
				}
			}
		}
	}
	lines, err := cmd(`LIST "" "user%s%%"`, sep)
	if err != nil {
		return nil, err
	}
	_, _ = cmd("LOGOUT")
	return usersFromList(lines, sep), nil
}

// usersFromList turns untagged LIST replies for user<sep>% into sorted user names:
// alice, or john.doe@example.com with virtual domains (IMAP puts the domain last).
func usersFromList(lines []string, sep string) []string {
	prefix := "user" + sep
	set := map[string]bool{}
	for _, l := range lines {
		if !strings.HasPrefix(l, "LIST ") {
			continue
		}
		// In the default namespace with virtual domains, user/john.doe is a \Noselect
		// intermediate of john.doe@example.com's folders, not a user.
		if flags, _, _ := strings.Cut(l, ")"); strings.Contains(flags, `\Noselect`) || strings.Contains(flags, `\NonExistent`) {
			continue
		}
		name := l[strings.LastIndexByte(l, ' ')+1:]
		if strings.HasSuffix(l, `"`) { // a quoted name may hold spaces
			if i := strings.LastIndex(l[:len(l)-1], ` "`); i >= 0 {
				name = strings.ReplaceAll(strings.ReplaceAll(l[i+2:len(l)-1], `\"`, `"`), `\\`, `\`)
			}
		}
		if u, ok := strings.CutPrefix(name, prefix); ok && u != "" && !strings.Contains(u, sep) {
			set[u] = true
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
