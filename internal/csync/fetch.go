package csync

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// ErrNoFile: GET FETCH answered without file content (the server found no file, or the
// file failed the server's own size/SHA-1 check and it printed NIL).
var ErrNoFile = errors.New("csync: server sent no message file")

// ErrGUIDMismatch: fetched content does not hash to the GUID it was announced with.
var ErrGUIDMismatch = errors.New("csync: message content does not match its GUID")

// FetchRequest names one message file for GET FETCH.
type FetchRequest struct {
	MboxName  string
	Partition string
	UniqueID  string // the mailbox's uniqueid (selects the on-disk directory)
	GUID      string
	UID       uint32
}

func (f FetchRequest) value() Value {
	return KV(F("MBOXNAME", Str(f.MboxName)), F("PARTITION", Str(f.Partition)),
		F("UNIQUEID", Str(f.UniqueID)), F("GUID", Str(f.GUID)), F("UID", Num(uint64(f.UID))))
}

// FetchBody streams the content of a GET FETCH reply straight from the connection.
// Read it (fully or not), then Close it: Close drains what is left, reads the status
// line and releases the connection. No other call may run on the connection while a
// FetchBody is open.
type FetchBody struct {
	File      // header; Data is nil
	c         *Conn
	ctx       context.Context
	remaining int64
	sum       hash.Hash
	readErr   error
	closed    bool
	closeErr  error
}

// Fetch sends GET FETCH and returns the message body as a stream.
func (r reader) Fetch(ctx context.Context, req FetchRequest) (*FetchBody, error) {
	c := r.c
	line, err := c.encodeCommand("GET", "FETCH", req.value())
	if err != nil {
		return nil, err
	}
	if err := c.begin(ctx, "GET FETCH"); err != nil {
		return nil, err
	}
	f, err := c.startFetch(line)
	if err != nil {
		return nil, c.end(ctx, err)
	}
	c.busy = true
	return &FetchBody{File: f, c: c, ctx: ctx, remaining: int64(f.Size), sum: sha1.New()}, nil
}

// startFetch writes the command and reads up to the start of the file content.
func (c *Conn) startFetch(line []byte) (File, error) {
	const cmd = "GET FETCH"
	if _, err := c.bw.Write(line); err != nil {
		return File{}, fmt.Errorf("csync: write: %w", err)
	}
	if err := c.flush(); err != nil {
		return File{}, err
	}
	b, err := c.br.Peek(2)
	if err != nil || string(b) != "* " {
		// A status line (NO …) or an error; readResponse turns it into an error.
		if err := c.readResponse(cmd, nil); err != nil {
			return File{}, err
		}
		return File{}, fmt.Errorf("%w: %s: OK without a MESSAGE line", ErrGarbled, cmd)
	}
	_, _ = c.br.Discard(2)
	dec := newDecoder(c.br, c.lim)
	key, err := dec.readAtom("data line key")
	if err != nil {
		return File{}, err
	}
	if key == "Fatal" {
		rest, _ := c.readLine()
		return File{}, &ServerError{Status: "FATAL", Text: "Fatal" + rest, Line: "* Fatal" + rest, Command: cmd}
	}
	if key != "MESSAGE" {
		return File{}, fmt.Errorf("%w: %s: unexpected data line %q", ErrGarbled, cmd, key)
	}
	if err := dec.expect(' ', "MESSAGE line"); err != nil {
		return File{}, err
	}
	if p, _ := c.br.Peek(2); string(p) != "%{" {
		// NIL (or anything else): finish the line and the reply, then report it.
		if _, err := dec.value(0); err != nil {
			return File{}, err
		}
		if err := dec.crlf("MESSAGE line"); err != nil {
			return File{}, err
		}
		if err := c.readResponse(cmd, nil); err != nil {
			return File{}, err
		}
		return File{}, ErrNoFile
	}
	_, _ = c.br.Discard(1)
	return dec.fileHeader()
}

// Read reads message bytes; io.EOF after Size bytes.
func (b *FetchBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, ErrClosed
	}
	if b.readErr != nil {
		return 0, b.readErr
	}
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.br.Read(p)
	b.sum.Write(p[:n])
	b.remaining -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("csync: GET FETCH: connection closed inside the message (%d bytes missing): %w", b.remaining, io.ErrUnexpectedEOF)
		} else {
			err = fmt.Errorf("csync: GET FETCH: read: %w", err)
		}
		b.readErr = err
	}
	return n, err
}

// Close finishes the reply. It returns ErrGUIDMismatch (the connection stays usable)
// when all content was read and its SHA-1 differs from the GUID.
func (b *FetchBody) Close() error {
	if b.closed {
		return b.closeErr
	}
	b.closed = true
	c := b.c
	c.busy = false
	err := b.readErr
	readAll := b.remaining == 0 && err == nil
	if err == nil && b.remaining > 0 {
		if _, err = io.CopyN(io.Discard, c.br, b.remaining); err != nil {
			err = fmt.Errorf("csync: GET FETCH: connection closed inside the message: %w", io.ErrUnexpectedEOF)
		}
	}
	if err == nil {
		err = newDecoder(c.br, c.lim).crlf("end of MESSAGE line")
	}
	if err == nil {
		err = c.readResponse("GET FETCH", nil)
	}
	b.closeErr = c.end(b.ctx, err)
	if b.closeErr == nil && readAll && hex.EncodeToString(b.sum.Sum(nil)) != strings.ToLower(b.GUID) {
		b.closeErr = fmt.Errorf("%w: %s", ErrGUIDMismatch, b.GUID)
	}
	return b.closeErr
}

// FetchTo streams one message into w and returns its header. The content is checked
// against its GUID.
func (r reader) FetchTo(ctx context.Context, req FetchRequest, w io.Writer) (File, error) {
	body, err := r.Fetch(ctx, req)
	if err != nil {
		return File{}, err
	}
	_, cerr := io.Copy(w, body)
	err = body.Close()
	if cerr != nil && err == nil {
		err = fmt.Errorf("csync: GET FETCH: copying the message: %w", cerr)
	}
	return body.File, err
}
