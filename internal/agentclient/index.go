package agentclient

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
)

// The agent reads the master's indexes for index deltas.
var _ cyrusindex.Source = (*Client)(nil)

// maxIndexLine bounds one line of an index answer (a record with its annotations).
const maxIndexLine = 16 << 20

// indexRefusals are the statuses an index read answers with a reason; any other
// status is an error of its own (e.g. 400, 401, an agent without the endpoint).
var indexRefusals = []int{http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusLocked,
	http.StatusConflict, http.StatusInternalServerError}

// ReadIndex reads a folder's index on the master through the agent. A refusal by the
// agent's reader comes back as the same kind of error the local reader returns
// (cyrusindex.ErrChecksum, ErrVersion, ErrFormat, ErrLocked, ErrChanged, or
// fs.ErrNotExist for a missing file), so that cyrusindex.Reason names it alike.
func (c *Client) ReadIndex(ctx context.Context, f cyrusindex.Folder, want cyrusindex.Want) (*cyrusindex.Index, error) {
	req := api.IndexRequest{Name: f.Name, UniqueID: f.UniqueID, Partition: f.Partition, Owner: f.Owner,
		SinceModSeq: want.SinceModSeq, AfterUID: want.AfterUID}
	resp, err := c.do(ctx, http.MethodPost, api.PathIndex, "", req, append([]int{http.StatusOK}, indexRefusals...)...)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.indexRefusal(resp)
	}
	idx, err := decodeIndex(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("agent %s index of %s: %w", c.o.URL, f.Name, err)
	}
	return idx, nil
}

// indexRefusal turns a refused read into the reader's error kind.
func (c *Client) indexRefusal(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e api.IndexError
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = string(b)
	}
	se := &StatusError{URL: c.o.URL, Code: resp.StatusCode, Msg: e.Error}
	if kind := reasonError(e.Reason); kind != nil {
		return fmt.Errorf("%w (%w)", kind, se)
	}
	return se
}

func reasonError(reason string) error {
	switch reason {
	case "version":
		return cyrusindex.ErrVersion
	case "checksum":
		return cyrusindex.ErrChecksum
	case "format":
		return cyrusindex.ErrFormat
	case "lock":
		return cyrusindex.ErrLocked
	case "changed":
		return cyrusindex.ErrChanged
	case "missing":
		return fs.ErrNotExist
	}
	return nil
}

// decodeIndex reads an index answer: the head line, then exactly the records it
// announces (a cut-short answer is an error, never a shorter delta).
func decodeIndex(r io.Reader) (*cyrusindex.Index, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxIndexLine)
	next := func(v any) error {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return err
			}
			return io.ErrUnexpectedEOF
		}
		return json.Unmarshal(sc.Bytes(), v)
	}
	var head api.IndexHead
	if err := next(&head); err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	if head.Records < 0 || head.Records > int(head.Header.NumRecords) {
		return nil, fmt.Errorf("head announces %d records of %d", head.Records, head.Header.NumRecords)
	}
	idx := indexOf(head)
	if head.Records > 0 { // none: nil, as the local reader leaves it
		idx.Records = make([]cyrusindex.Record, 0, head.Records)
	}
	for i := 0; i < head.Records; i++ {
		var wr api.IndexRecord
		if err := next(&wr); err != nil {
			return nil, fmt.Errorf("record %d of %d: %w", i+1, head.Records, err)
		}
		rec, err := recordOf(&wr)
		if err != nil {
			return nil, fmt.Errorf("record %d of %d: %w", i+1, head.Records, err)
		}
		idx.Records = append(idx.Records, rec)
	}
	if sc.Scan() || sc.Err() != nil {
		return nil, errors.New("more than the records announced")
	}
	return idx, nil
}

func indexOf(head api.IndexHead) *cyrusindex.Index {
	h, m := &head.Header, &head.Mailbox
	return &cyrusindex.Index{
		Header: cyrusindex.Header{
			Generation: h.Generation, Format: h.Format, MinorVersion: h.MinorVersion, StartOffset: h.StartOffset,
			RecordSize: h.RecordSize, NumRecords: h.NumRecords, LastAppendDate: h.LastAppendDate, LastUID: h.LastUID,
			QuotaUsed: h.QuotaUsed, POP3LastLogin: h.POP3LastLogin, UIDValidity: h.UIDValidity, Options: h.Options,
			HighestModSeq: h.HighestModSeq, DeletedModSeq: h.DeletedModSeq, Exists: h.Exists, FirstExpunged: h.FirstExpunged,
			LastRepackTime: h.LastRepackTime, HeaderFileCRC: h.HeaderFileCRC, SyncCRC: h.SyncCRC, RecentUID: h.RecentUID,
			RecentTime: h.RecentTime, POP3ShowAfter: h.POP3ShowAfter, SyncCRCAnnot: h.SyncCRCAnnot, Unseen: h.Unseen,
			CreatedModSeq: h.CreatedModSeq, ChangesEpoch: h.ChangesEpoch,
		},
		Mailbox: cyrusindex.MailboxHeader{Type: m.Type, Name: m.Name, UniqueID: m.UniqueID, QuotaRoot: m.QuotaRoot,
			ACL: m.ACL, UserFlags: m.UserFlags, CRC: m.CRC},
		Delta: cyrusindex.Delta{Scanned: head.Scanned},
	}
}

func recordOf(w *api.IndexRecord) (cyrusindex.Record, error) {
	r := cyrusindex.Record{
		UID: w.UID, InternalDate: w.InternalDate, SentDate: w.SentDate, Size: w.Size, HeaderSize: w.HeaderSize,
		GMTime: w.GMTime, LastUpdated: w.LastUpdated, SystemFlags: w.SystemFlags, InternalFlags: w.InternalFlags,
		UserFlags: w.UserFlags, SaveDate: w.SaveDate, ModSeq: w.ModSeq, ThrID: w.ThrID, CreatedModSeq: w.CreatedModSeq,
		Flags: w.Flags,
	}
	g, err := hex.DecodeString(w.GUID)
	if err != nil || len(g) != len(r.GUID) {
		return r, fmt.Errorf("uid %d: GUID %q: want %d hex digits", w.UID, w.GUID, 2*len(r.GUID))
	}
	copy(r.GUID[:], g)
	for _, a := range w.Annotations {
		r.Annotations = append(r.Annotations, cyrusindex.Annotation{Entry: a.Entry, UserID: a.UserID, ModSeq: a.ModSeq, Value: a.Value})
	}
	return r, nil
}
