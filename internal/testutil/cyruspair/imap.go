package cyruspair

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// IMAPClient is a minimal IMAP4rev1 client for seeding and inspecting test servers: it
// sends tagged commands and returns the untagged responses, with literals inlined.
type IMAPClient struct {
	conn net.Conn
	r    *bufio.Reader
	tag  int
}

// DialIMAP connects in plaintext and authenticates with SASL PLAIN (initial response
// inline). authz, when not empty, is the user to act as (the authenticating user must be
// a proxy server). Tests of a pair use Instance.DialIMAP, which follows the pair's TLS.
func DialIMAP(addr, authz, user, password string) (*IMAPClient, error) {
	return DialIMAPTLS(addr, nil, authz, user, password)
}

// DialIMAP connects to the instance as DialIMAP does, with STARTTLS verified against
// the pair's CA when the pair runs with TLS.
func (i *Instance) DialIMAP(authz, user, password string) (*IMAPClient, error) {
	return DialIMAPTLS(i.IMAPAddr, i.pair.ClientTLS(), authz, user, password)
}

// DialIMAPTLS is DialIMAP with STARTTLS (config cfg) before authenticating; a nil cfg
// stays in plaintext.
func DialIMAPTLS(addr string, cfg *tls.Config, authz, user, password string) (*IMAPClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial imap %s: %w", addr, err)
	}
	c := &IMAPClient{conn: conn, r: bufio.NewReader(conn)}
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		conn.Close()
		return nil, err
	}
	greeting, err := c.readLine()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("imap greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		conn.Close()
		return nil, fmt.Errorf("imap greeting: %q", greeting)
	}
	if cfg != nil {
		if err := c.startTLS(cfg); err != nil {
			conn.Close()
			return nil, err
		}
	}
	ir := base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + password))
	if _, err := c.Cmd("AUTHENTICATE PLAIN %s", ir); err != nil {
		conn.Close()
		return nil, fmt.Errorf("imap authenticate as %s (for %q): %w", user, authz, err)
	}
	return c, nil
}

// startTLS runs STARTTLS and the handshake; later commands go through TLS.
func (c *IMAPClient) startTLS(cfg *tls.Config) error {
	if _, err := c.Cmd("STARTTLS"); err != nil {
		return err
	}
	if c.r.Buffered() != 0 {
		return fmt.Errorf("imap: data after the STARTTLS reply")
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("imap STARTTLS handshake: %w", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return nil
}

// Close logs out and closes the connection.
func (c *IMAPClient) Close() error {
	_, _ = c.Cmd("LOGOUT")
	return c.conn.Close()
}

// readLine reads one response line, inlining any literals it announces.
func (c *IMAPClient) readLine() (string, error) {
	var sb strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		sb.WriteString(line)
		n, ok := trailingLiteral(line)
		if !ok {
			return sb.String(), nil
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return "", err
		}
		sb.WriteString("\r\n")
		sb.Write(buf)
	}
}

func trailingLiteral(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// Cmd sends one command and returns its untagged responses (without the "* " prefix).
// A NO or BAD completion is an error that quotes the server.
func (c *IMAPClient) Cmd(format string, args ...any) ([]string, error) {
	return c.cmdWithLiteral(fmt.Sprintf(format, args...), nil)
}

// cmdWithLiteral sends cmd, then, if lit is not nil, a LITERAL+ literal with it.
func (c *IMAPClient) cmdWithLiteral(cmd string, lit []byte) ([]string, error) {
	c.tag++
	tag := fmt.Sprintf("t%d", c.tag)
	if err := c.conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return nil, err
	}
	var err error
	if lit != nil {
		_, err = fmt.Fprintf(c.conn, "%s %s {%d+}\r\n%s\r\n", tag, cmd, len(lit), lit)
	} else {
		_, err = fmt.Fprintf(c.conn, "%s %s\r\n", tag, cmd)
	}
	if err != nil {
		return nil, fmt.Errorf("imap send: %w", err)
	}
	var untagged []string
	for {
		line, err := c.readLine()
		if err != nil {
			return untagged, fmt.Errorf("imap %s: %w", firstWord(cmd), err)
		}
		switch {
		case strings.HasPrefix(line, "* "):
			untagged = append(untagged, line[2:])
		case strings.HasPrefix(line, tag+" "):
			status := line[len(tag)+1:]
			if strings.HasPrefix(status, "OK") {
				return untagged, nil
			}
			return untagged, fmt.Errorf("imap %s: %s", firstWord(cmd), status)
		}
	}
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i > 0 {
		return s[:i]
	}
	return s
}

// Quote makes an IMAP quoted string.
func Quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// IMAPAs connects to the instance as user (through the admin's proxy right), or as the
// admin itself when user is "" or the admin's name. The connection closes at test end.
func (i *Instance) IMAPAs(t testing.TB, user string) *IMAPClient {
	t.Helper()
	authz := user
	if user == i.pair.AdminUser {
		authz = ""
	}
	c, err := i.DialIMAP(authz, i.pair.AdminUser, i.pair.AdminPassword)
	if err != nil {
		t.Fatalf("%s: %v", i.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// imapDo runs one command as user on a fresh connection.
func (i *Instance) imapDo(t testing.TB, user, format string, args ...any) []string {
	t.Helper()
	authz := user
	if user == "" || user == i.pair.AdminUser {
		authz = ""
	}
	c, err := i.DialIMAP(authz, i.pair.AdminUser, i.pair.AdminPassword)
	if err != nil {
		t.Fatalf("%s: %v", i.Name, err)
	}
	defer c.Close()
	out, err := c.Cmd(format, args...)
	if err != nil {
		t.Fatalf("%s as %q: %v", i.Name, user, err)
	}
	return out
}

// CreateUser creates the user's INBOX (as the admin).
func (i *Instance) CreateUser(t testing.TB, user string) {
	t.Helper()
	i.imapDo(t, i.pair.AdminUser, "CREATE %s", Quote(i.pair.IMAPUser(user)))
}

// CreateUserOn creates the user's INBOX on the named partition of this instance, as
// the admin (Cyrus's CREATE name partition).
func (i *Instance) CreateUserOn(t testing.TB, user, partition string) {
	t.Helper()
	i.imapDo(t, i.pair.AdminUser, "CREATE %s %s", Quote(i.pair.IMAPUser(user)), partition) // an atom: Cyrus refuses a quoted partition
}

// CreateFolderOn creates a folder of the user on the named partition, as the admin.
func (i *Instance) CreateFolderOn(t testing.TB, user, folder, partition string) {
	t.Helper()
	i.imapDo(t, i.pair.AdminUser, "CREATE %s %s", Quote(i.pair.IMAPAdminName(user, folder)), partition)
}

// CreateFolder creates a folder of the user, as the user.
func (i *Instance) CreateFolder(t testing.TB, user, folder string) {
	t.Helper()
	i.imapDo(t, user, "CREATE %s", Quote(i.pair.IMAPFolder(folder)))
}

// Rename renames a folder of the user, as the user.
func (i *Instance) Rename(t testing.TB, user, from, to string) {
	t.Helper()
	i.imapDo(t, user, "RENAME %s %s", Quote(i.pair.IMAPFolder(from)), Quote(i.pair.IMAPFolder(to)))
}

// Delete deletes a folder of the user, as the user (delayed or immediate, per the
// pair's delete_mode).
func (i *Instance) Delete(t testing.TB, user, folder string) {
	t.Helper()
	i.imapDo(t, user, "DELETE %s", Quote(i.pair.IMAPFolder(folder)))
}

// Append appends msg to a folder of the user with the given flags; it returns the UID.
func (i *Instance) Append(t testing.TB, user, folder string, msg []byte, flags ...string) uint32 {
	t.Helper()
	c := i.IMAPAs(t, user)
	cmd := "APPEND " + Quote(i.pair.IMAPFolder(folder))
	if len(flags) > 0 {
		cmd += " (" + strings.Join(flags, " ") + ")"
	}
	c.tag++
	tag := fmt.Sprintf("t%d", c.tag)
	if _, err := fmt.Fprintf(c.conn, "%s %s {%d+}\r\n", tag, cmd, len(msg)); err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := c.conn.Write(append(append([]byte{}, msg...), '\r', '\n')); err != nil {
		t.Fatalf("append: %v", err)
	}
	for {
		line, err := c.readLine()
		if err != nil {
			t.Fatalf("append to %s/%s on %s: %v", user, folder, i.Name, err)
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line[len(tag)+1:], "OK") {
				t.Fatalf("append to %s/%s on %s: %s", user, folder, i.Name, line)
			}
			// t1 OK [APPENDUID <uidvalidity> <uid>] Completed
			if j := strings.Index(line, "APPENDUID "); j >= 0 {
				f := strings.Fields(line[j:])
				if len(f) >= 3 {
					uid, _ := strconv.ParseUint(strings.TrimSuffix(f[2], "]"), 10, 32)
					return uint32(uid)
				}
			}
			return 0
		}
	}
}

// Store changes flags: Store(t, "alice", "INBOX", "1:*", "+FLAGS", `\Seen`).
func (i *Instance) Store(t testing.TB, user, folder, seqset, op string, flags ...string) {
	t.Helper()
	c := i.IMAPAs(t, user)
	if _, err := c.Cmd("SELECT %s", Quote(i.pair.IMAPFolder(folder))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cmd("STORE %s %s (%s)", seqset, op, strings.Join(flags, " ")); err != nil {
		t.Fatal(err)
	}
}

// Expunge removes the messages flagged \Deleted from a folder.
func (i *Instance) Expunge(t testing.TB, user, folder string) {
	t.Helper()
	c := i.IMAPAs(t, user)
	if _, err := c.Cmd("SELECT %s", Quote(i.pair.IMAPFolder(folder))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cmd("EXPUNGE"); err != nil {
		t.Fatal(err)
	}
}

// Subscribe subscribes the user to a folder.
func (i *Instance) Subscribe(t testing.TB, user, folder string) {
	t.Helper()
	i.imapDo(t, user, "SUBSCRIBE %s", Quote(i.pair.IMAPFolder(folder)))
}

// SetQuota sets the user's storage quota in KiB (as the admin).
func (i *Instance) SetQuota(t testing.TB, user string, storageKB int) {
	t.Helper()
	i.imapDo(t, i.pair.AdminUser, "SETQUOTA %s (STORAGE %d)", Quote(i.pair.IMAPUser(user)), storageKB)
}

// SetAnnotation sets a folder annotation through METADATA; entry "/comment" means
// "/shared/comment".
func (i *Instance) SetAnnotation(t testing.TB, user, folder, entry, value string) {
	t.Helper()
	if !strings.HasPrefix(entry, "/shared/") && !strings.HasPrefix(entry, "/private/") {
		entry = "/shared" + entry
	}
	i.imapDo(t, user, "SETMETADATA %s (%s %s)", Quote(i.pair.IMAPFolder(folder)), entry, Quote(value))
}

// List returns the user's folders relative to the user ("INBOX", "Sent", "Work.Old"),
// in the form names.go describes.
func (i *Instance) List(t testing.TB, user string) []string {
	t.Helper()
	lines := i.imapDo(t, user, `LIST "" "*"`)
	var names []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "LIST ") {
			continue
		}
		if name := i.pair.folderFromIMAP(ListName(l)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// ListName returns the last atom or quoted string of an untagged line: the mailbox name
// of a LIST reply.
func ListName(l string) string {
	l = strings.TrimSpace(l)
	if strings.HasSuffix(l, `"`) {
		j := strings.LastIndex(l[:len(l)-1], ` "`)
		if j >= 0 {
			s := l[j+2 : len(l)-1]
			return strings.ReplaceAll(strings.ReplaceAll(s, `\"`, `"`), `\\`, `\`)
		}
	}
	if k := strings.LastIndex(l, "\r\n"); k >= 0 { // a literal
		return l[k+2:]
	}
	f := strings.Fields(l)
	return f[len(f)-1]
}

// Status is what IMAP STATUS reports for a folder.
type Status struct {
	Messages      uint32
	UIDNext       uint32
	UIDValidity   uint32
	HighestModSeq uint64
	Unseen        uint32
}

// Status returns IMAP STATUS of a folder of the user.
func (i *Instance) Status(t testing.TB, user, folder string) Status {
	t.Helper()
	lines := i.imapDo(t, user, "STATUS %s (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ UNSEEN)", Quote(i.pair.IMAPFolder(folder)))
	var st Status
	for _, l := range lines {
		if !strings.HasPrefix(l, "STATUS ") {
			continue
		}
		open := strings.LastIndexByte(l, '(')
		f := strings.Fields(strings.Trim(l[open:], "()"))
		for k := 0; k+1 < len(f); k += 2 {
			v, _ := strconv.ParseUint(f[k+1], 10, 64)
			switch strings.ToUpper(f[k]) {
			case "MESSAGES":
				st.Messages = uint32(v)
			case "UIDNEXT":
				st.UIDNext = uint32(v)
			case "UIDVALIDITY":
				st.UIDValidity = uint32(v)
			case "HIGHESTMODSEQ":
				st.HighestModSeq = v
			case "UNSEEN":
				st.Unseen = uint32(v)
			}
		}
		return st
	}
	t.Fatalf("no STATUS reply for %s/%s on %s", user, folder, i.Name)
	return st
}

// Message builds a small valid RFC 5322 message with CRLF line ends.
func Message(subject, body string) []byte {
	var sb strings.Builder
	sb.WriteString("From: sender@example.test\r\n")
	sb.WriteString("To: rcpt@example.test\r\n")
	sb.WriteString("Subject: " + subject + "\r\n")
	sb.WriteString("Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n")
	sb.WriteString("Message-ID: <" + strconv.FormatInt(time.Now().UnixNano(), 36) + "." + base64.RawURLEncoding.EncodeToString([]byte(subject)) + "@example.test>\r\n")
	sb.WriteString("\r\n")
	sb.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	sb.WriteString("\r\n")
	return []byte(sb.String())
}
