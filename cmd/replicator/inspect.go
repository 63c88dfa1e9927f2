package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
)

func init() {
	register("inspect", command{
		summary: "print one user's state on one sync_server as JSON (read-only: GET only)",
		run:     runInspect,
	})
}

// inspectMailbox is one mailbox in the inspect output.
type inspectMailbox struct {
	Name          string `json:"name"`
	Type          string `json:"mboxtype,omitempty"`
	UIDValidity   uint32 `json:"uidvalidity"`
	LastUID       uint32 `json:"last_uid"`
	HighestModSeq uint64 `json:"highestmodseq"`
	SyncCRC       uint32 `json:"sync_crc"`
	SyncCRCAnnot  uint32 `json:"sync_crc_annot"`
	// Records counts the index records of GET FULLMAILBOX (expunged ones included);
	// nil for intermediates, which have no index.
	Records  *int `json:"records"`
	Expunged *int `json:"expunged,omitempty"`
	// CRCVerified says whether SYNC_CRC and SYNC_CRC_ANNOT recomputed from the records
	// equal what the server reports.
	CRCVerified *bool `json:"crc_verified,omitempty"`
}

type inspectOutput struct {
	Server        string                    `json:"server"`
	User          string                    `json:"user"`
	Mailboxes     map[string]inspectMailbox `json:"mailboxes"` // by uniqueid
	Quotas        []csync.Quota             `json:"quotas"`
	Subscriptions []string                  `json:"subscriptions"`
	Seen          []csync.Seen              `json:"seen"`
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "sync_server address HOST:PORT (required)")
	user := fs.String("user", "", "the user to inspect, e.g. alice (required)")
	username := fs.String("username", "repl", "admin user to authenticate as")
	passwordFile := fs.String("password-file", "", "file holding the password (default: env CYRUSREPL_PASSWORD)")
	timeout := fs.Duration("timeout", 30*time.Second, "overall time limit")
	var end tlsEnd
	fs.StringVar(&end.mode, "tls", tlsStartTLS, "starttls, tls (TLS from the first byte) or none (plaintext: the password crosses the network in clear)")
	fs.StringVar(&end.caFile, "ca-file", "", "PEM CA bundle to verify the server (default: system roots); needs --tls starttls or tls")
	fs.StringVar(&end.serverName, "tls-server-name", "", "the name the server's certificate must be issued for (default: the host of --server)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return exitUsage, usageErrorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case *server == "":
		return exitUsage, usageErrorf("--server is required")
	case *user == "":
		return exitUsage, usageErrorf("--user is required")
	case *timeout <= 0:
		return exitUsage, usageErrorf("--timeout must be positive")
	}
	if err := end.check(""); err != nil {
		return exitUsage, err
	}
	password, err := readPassword(*passwordFile)
	if err != nil {
		return exitUsage, err
	}
	opt, err := end.options(*server, csync.Options{Username: *username, Password: password, Timeout: *timeout})
	if err != nil {
		return exitUsage, err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	m, err := csync.DialMaster(ctx, *server, opt)
	if err != nil {
		return exitUsage, usageError{describeDialError(err, *server, *username)}
	}
	defer m.Close()

	out, err := inspectUser(ctx, m, *user)
	if err != nil {
		return exitFailed, err
	}
	out.Server = *server
	_ = m.Exit(ctx)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return exitFailed, err
	}
	return exitOK, nil
}

func readPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageErrorf("reading --password-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if p, ok := os.LookupEnv("CYRUSREPL_PASSWORD"); ok {
		return p, nil
	}
	return "", usageErrorf("no password: give --password-file or set CYRUSREPL_PASSWORD")
}

// describeDialError names the cause of a failed connection in one line.
func describeDialError(err error, server, username string) error {
	var netErr *net.OpError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		return fmt.Errorf("refused the TLS certificate of %s (check the CA file, the host name or IP it was issued for and its validity): %w", server, err)
	case errors.Is(err, csync.ErrAuthFailed):
		return fmt.Errorf("wrong username or password for %q on %s: %w", username, server, err)
	case errors.Is(err, csync.ErrPermissionDenied):
		return fmt.Errorf("%q is not an admin on %s (add it to admins in imapd.conf): %w", username, server, err)
	case errors.Is(err, csync.ErrNoCapability):
		return fmt.Errorf("%s does not offer what was asked: %w", server, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s did not answer in time: %w", server, err)
	case errors.As(err, &netErr) && netErr.Op == "dial":
		return fmt.Errorf("cannot reach %s: %w", server, err)
	}
	return fmt.Errorf("cannot open a sync session with %s: %w", server, err)
}

// inspectUser reads the user's state: GET USER, then GET FULLMAILBOX per mailbox.
func inspectUser(ctx context.Context, m *csync.MasterConn, user string) (*inspectOutput, error) {
	st, err := m.GetUser(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("GET USER %s: %w", user, err)
	}
	out := &inspectOutput{
		User:          user,
		Mailboxes:     map[string]inspectMailbox{},
		Quotas:        nonNil(st.Quotas),
		Subscriptions: nonNil(st.Subscriptions),
		Seen:          nonNil(st.Seen),
	}
	for _, mb := range st.Mailboxes {
		im := inspectMailbox{
			Name: mb.Name, Type: mb.Type, UIDValidity: mb.UIDValidity, LastUID: mb.LastUID,
			HighestModSeq: mb.HighestModSeq, SyncCRC: mb.SyncCRC, SyncCRCAnnot: mb.SyncCRCAnnot,
		}
		if !mb.IsTombstoneOrIntermediate() {
			full, err := m.GetFullMailbox(ctx, mb.Name)
			switch {
			case errors.Is(err, csync.ErrMailboxNonexistent):
				// deleted or renamed since GET USER: report it without records
			case err != nil:
				return nil, fmt.Errorf("GET FULLMAILBOX %s: %w", mb.Name, err)
			default:
				n, exp := len(full.Records), 0
				for i := range full.Records {
					if full.Records[i].Expunged() {
						exp++
					}
				}
				ok := csync.SyncCRC(full.Records) == full.SyncCRC && csync.SyncCRCAnnot(full.Records) == full.SyncCRCAnnot
				im.Records, im.Expunged, im.CRCVerified = &n, &exp, &ok
			}
		}
		out.Mailboxes[mb.UniqueID] = im
	}
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
