package cyruspair

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Deliver delivers msg to the user's INBOX over LMTP.
func (i *Instance) Deliver(t testing.TB, user string, msg []byte) {
	t.Helper()
	if err := i.DeliverLMTP([]string{user}, msg); err != nil {
		t.Fatalf("deliver to %s on %s: %v", user, i.Name, err)
	}
}

// DeliverMany delivers each message in one LMTP session (fast bulk seeding).
func (i *Instance) DeliverMany(t testing.TB, user string, msgs [][]byte) {
	t.Helper()
	if err := deliverSession(i.LMTPAddr, []string{user}, msgs); err != nil {
		t.Fatalf("deliver %d messages to %s on %s: %v", len(msgs), user, i.Name, err)
	}
}

// DeliverLMTP delivers one message to the recipients' INBOXes.
func DeliverLMTP(addr string, rcpts []string, msg []byte) error {
	return deliverSession(addr, rcpts, [][]byte{msg})
}

// DeliverLMTP delivers one message to the recipients' INBOXes on this instance. LMTP
// stays in plaintext even on a pair with TLS: delivery sends no credentials, and the
// pair's lmtpd runs pre-authenticated (-a), so it offers no STARTTLS (LHLO does not
// list it; the command answers "500 5.5.2 Syntax error").
func (i *Instance) DeliverLMTP(rcpts []string, msg []byte) error {
	return deliverSession(i.LMTPAddr, rcpts, [][]byte{msg})
}

func deliverSession(addr string, rcpts []string, msgs [][]byte) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dial lmtp %s: %w", addr, err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expect := func(code string) error {
		if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
			return err
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("lmtp read: %w", err)
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("lmtp: want %s, got %q", code, strings.TrimSpace(line))
			}
			if len(line) > 3 && line[3] == ' ' {
				return nil
			}
		}
	}
	send := func(format string, args ...any) error {
		_, err := fmt.Fprintf(conn, format, args...)
		return err
	}
	if err := expect("220"); err != nil {
		return err
	}
	if err := send("LHLO cyrusrepl.test\r\n"); err != nil {
		return err
	}
	if err := expect("250"); err != nil {
		return err
	}
	for _, msg := range msgs {
		if err := send("MAIL FROM:<sender@example.test>\r\n"); err != nil {
			return err
		}
		if err := expect("250"); err != nil {
			return err
		}
		for _, rc := range rcpts {
			if err := send("RCPT TO:<%s>\r\n", rc); err != nil {
				return err
			}
			if err := expect("250"); err != nil {
				return fmt.Errorf("rcpt %s: %w", rc, err)
			}
		}
		if err := send("DATA\r\n"); err != nil {
			return err
		}
		if err := expect("354"); err != nil {
			return err
		}
		if _, err := conn.Write(dotStuff(msg)); err != nil {
			return err
		}
		if err := send(".\r\n"); err != nil {
			return err
		}
		for range rcpts { // LMTP answers once per recipient
			if err := expect("250"); err != nil {
				return fmt.Errorf("data: %w", err)
			}
		}
	}
	_ = send("QUIT\r\n")
	return nil
}

func dotStuff(msg []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(msg, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
