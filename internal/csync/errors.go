package csync

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for the server's status replies (csync-protocol.md §1.4). A reply is
// returned as a *ServerError that matches one of these with errors.Is.
var (
	ErrInvalidUser         = errors.New("csync: IMAP_INVALID_USER")
	ErrMailboxNonexistent  = errors.New("csync: IMAP_MAILBOX_NONEXISTENT")
	ErrMailboxLocked       = errors.New("csync: IMAP_MAILBOX_LOCKED")
	ErrMailboxMoved        = errors.New("csync: IMAP_MAILBOX_MOVED")
	ErrMailboxNotSupported = errors.New("csync: IMAP_MAILBOX_NOTSUPPORTED")
	ErrSyncChecksum        = errors.New("csync: IMAP_SYNC_CHECKSUM")
	ErrSyncChanged         = errors.New("csync: IMAP_SYNC_CHANGED")
	ErrSyncBadSieve        = errors.New("csync: IMAP_SYNC_BADSIEVE")
	ErrProtocol            = errors.New("csync: IMAP_PROTOCOL_ERROR")
	ErrBadParameters       = errors.New("csync: IMAP_PROTOCOL_BAD_PARAMETERS")
	// ErrRemoteDenied is any other NO, e.g. "NO Unknown error" for IMAP_MAILBOX_EXISTS.
	ErrRemoteDenied = errors.New("csync: request denied by server")
	// ErrPermissionDenied: the authenticated user is not an admin on that server.
	ErrPermissionDenied = errors.New("csync: permission denied (not an admin)")
	// ErrNotAuthenticated: a command was sent before authentication.
	ErrNotAuthenticated = errors.New("csync: not authenticated")
	// ErrAuthFailed: AUTHENTICATE was refused (wrong user or password).
	ErrAuthFailed = errors.New("csync: authentication failed")
	// ErrBadCommand: the server answered BAD (unparsable or unknown command).
	ErrBadCommand = errors.New("csync: command rejected as BAD")
	// ErrServerBye: the server is shutting down (BYE).
	ErrServerBye = errors.New("csync: server said BYE")
	// ErrServerFatal: the server printed "* Fatal error:" and closed the connection.
	ErrServerFatal = errors.New("csync: server fatal error")

	// ErrGarbled: the server sent something that is not a valid reply.
	ErrGarbled = errors.New("csync: garbled server reply")
	// ErrBroken: an earlier protocol, I/O or cancellation error left the connection in
	// an unknown state; it refuses further use.
	ErrBroken = errors.New("csync: connection is broken")
	// ErrBusy: a streamed reply (GET FETCH body) is still open on this connection.
	ErrBusy = errors.New("csync: connection busy with an open fetch body")
	// ErrNoCapability: the server did not advertise a requested feature.
	ErrNoCapability = errors.New("csync: server lacks capability")
)

// codes maps the IMAP_xxx code at the start of a NO/BAD text to a sentinel.
var codes = map[string]error{
	"IMAP_INVALID_USER":            ErrInvalidUser,
	"IMAP_MAILBOX_NONEXISTENT":     ErrMailboxNonexistent,
	"IMAP_MAILBOX_LOCKED":          ErrMailboxLocked,
	"IMAP_MAILBOX_MOVED":           ErrMailboxMoved,
	"IMAP_MAILBOX_NOTSUPPORTED":    ErrMailboxNotSupported,
	"IMAP_SYNC_CHECKSUM":           ErrSyncChecksum,
	"IMAP_SYNC_CHANGED":            ErrSyncChanged,
	"IMAP_SYNC_BADSIEVE":           ErrSyncBadSieve,
	"IMAP_PROTOCOL_ERROR":          ErrProtocol,
	"IMAP_PROTOCOL_BAD_PARAMETERS": ErrBadParameters,
}

// ServerError is a NO, BAD, BYE or fatal reply from the server.
type ServerError struct {
	Status string // "NO", "BAD", "BYE" or "FATAL"
	Code   string // IMAP_xxx code when the text starts with one
	Text   string // the text after the status (and code)
	Line   string // the raw line as received, without CRLF
	// Command is the command word and key that got the reply, e.g. "APPLY MAILBOX".
	Command string
	kind    error
}

func (e *ServerError) Error() string {
	cmd := ""
	if e.Command != "" {
		cmd = e.Command + ": "
	}
	return fmt.Sprintf("csync: %sserver replied %q", cmd, e.Line)
}

// Unwrap returns the sentinel the reply maps to (nil if none; then only ErrRemoteDenied
// or ErrBadCommand match through Is).
func (e *ServerError) Unwrap() []error {
	errs := []error{}
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	switch e.Status {
	case "BAD":
		errs = append(errs, ErrBadCommand)
	case "BYE":
		errs = append(errs, ErrServerBye)
	case "FATAL":
		errs = append(errs, ErrServerFatal)
	}
	return errs
}

// parseStatus builds the error for a NO/BAD/BYE status line. ok reports an OK line.
func parseStatus(line string) (ok bool, err error) {
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "OK":
		return true, nil
	case "NO", "BAD", "BYE":
	default:
		return false, fmt.Errorf("%w: unexpected line %q", ErrGarbled, truncate(line))
	}
	se := &ServerError{Status: word, Text: rest, Line: line}
	if word == "BYE" {
		return false, se
	}
	// The real client matches "IMAP_xxx " with a trailing space; we also accept the
	// code alone, which is how IMAP_PROTOCOL_BAD_PARAMETERS arrives.
	code, text, _ := strings.Cut(rest, " ")
	if k, found := codes[code]; found {
		se.Code, se.Text, se.kind = code, text, k
		return false, se
	}
	if word == "NO" {
		switch {
		case rest == "Permission denied":
			se.kind = ErrPermissionDenied
		case rest == "Please authenticate first":
			se.kind = ErrNotAuthenticated
		default:
			se.kind = ErrRemoteDenied
		}
	}
	return false, se
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
