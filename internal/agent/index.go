package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
)

// decodeIndexRequest decodes an index body strictly and checks it: the uniqueid is the
// only field that ever reaches a file name (through cyrusindex.Dir's uniqueid →
// directory mapping), so it may hold only letters, digits and '-', of a bounded length;
// the partition is checked against imapd.conf when the request is served.
func decodeIndexRequest(body []byte) (*api.IndexRequest, error) {
	if len(body) > api.MaxBody {
		return nil, &statusError{code: http.StatusRequestEntityTooLarge, msg: "body too large"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r api.IndexRequest
	if err := dec.Decode(&r); err != nil {
		return nil, badRequest("index body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("index body: more than one JSON value")
	}
	if err := checkUniqueID(r.UniqueID); err != nil {
		return nil, err
	}
	if err := checkName("name", r.Name); err != nil {
		return nil, err
	}
	if r.Owner != "" {
		if err := checkName("owner", r.Owner); err != nil {
			return nil, err
		}
	}
	if r.Partition == "" || len(r.Partition) > api.MaxPartitionLen || !alnum(r.Partition, "-_") {
		return nil, badRequest("partition %q: want 1 to %d letters, digits, '-' or '_'", r.Partition, api.MaxPartitionLen)
	}
	return &r, nil
}

// checkUniqueID accepts what Cyrus writes as a mailbox's uniqueid: letters, digits and
// '-' (never first), api.MinUniqueIDLen to api.MaxUniqueIDLen of them.
func checkUniqueID(id string) error {
	if len(id) < api.MinUniqueIDLen || len(id) > api.MaxUniqueIDLen || id[0] == '-' || !alnum(id, "-") {
		return badRequest("uniqueid %q: want %d to %d letters, digits or '-'", id, api.MinUniqueIDLen, api.MaxUniqueIDLen)
	}
	return nil
}

// alnum reports whether s holds only ASCII letters, digits and the bytes of extra.
func alnum(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || bytes.IndexByte([]byte(extra), c) >= 0) {
			return false
		}
	}
	return true
}

// serveIndex reads the folder's index from the partition imapd.conf names (read
// again for every request: it is small, and a changed partition list is seen at once)
// and streams it: an api.IndexHead line, then one line per record.
func (s *Server) serveIndex(ctx context.Context, w http.ResponseWriter, r *api.IndexRequest) {
	parts, err := cyrusindex.Partitions(s.conf)
	if err != nil {
		s.failIndex(w, http.StatusInternalServerError, "io", err)
		return
	}
	if _, ok := parts[r.Partition]; !ok {
		s.fail(w, badRequest("partition %q: imapd.conf names no such partition", r.Partition))
		return
	}
	local := &cyrusindex.Local{Partitions: parts}
	idx, err := local.ReadIndex(ctx, cyrusindex.Folder{Name: r.Name, UniqueID: r.UniqueID, Partition: r.Partition, Owner: r.Owner},
		cyrusindex.Want{SinceModSeq: r.SinceModSeq, AfterUID: r.AfterUID})
	if err != nil {
		reason := cyrusindex.Reason(err)
		s.failIndex(w, indexStatus(reason), reason, err)
		return
	}
	w.Header().Set("Content-Type", api.IndexContentType)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(indexHead(idx)); err != nil {
		return
	}
	for i := range idx.Records {
		if err := enc.Encode(indexRecord(&idx.Records[i])); err != nil {
			return // the client is gone; it sees a short answer
		}
	}
	_ = bw.Flush()
}

// indexStatus is the status code of a reader's refusal.
func indexStatus(reason string) int {
	switch reason {
	case "missing":
		return http.StatusNotFound
	case "version", "checksum", "format":
		return http.StatusUnprocessableEntity
	case "lock":
		return http.StatusLocked
	case "changed":
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// failIndex answers a read the agent could not do, saying why in the reader's terms.
// Only an I/O trouble is the agent's own and logged; the others are the index's state.
func (s *Server) failIndex(w http.ResponseWriter, code int, reason string, err error) {
	if reason == "io" {
		s.logger.Error("index read failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.IndexError{Error: err.Error(), Reason: reason})
}

func indexHead(idx *cyrusindex.Index) api.IndexHead {
	h, m := &idx.Header, &idx.Mailbox
	return api.IndexHead{
		Header: api.IndexHeader{
			Generation: h.Generation, Format: h.Format, MinorVersion: h.MinorVersion, StartOffset: h.StartOffset,
			RecordSize: h.RecordSize, NumRecords: h.NumRecords, LastAppendDate: h.LastAppendDate, LastUID: h.LastUID,
			QuotaUsed: h.QuotaUsed, POP3LastLogin: h.POP3LastLogin, UIDValidity: h.UIDValidity, Options: h.Options,
			HighestModSeq: h.HighestModSeq, DeletedModSeq: h.DeletedModSeq, Exists: h.Exists, FirstExpunged: h.FirstExpunged,
			LastRepackTime: h.LastRepackTime, HeaderFileCRC: h.HeaderFileCRC, SyncCRC: h.SyncCRC, RecentUID: h.RecentUID,
			RecentTime: h.RecentTime, POP3ShowAfter: h.POP3ShowAfter, SyncCRCAnnot: h.SyncCRCAnnot, Unseen: h.Unseen,
			CreatedModSeq: h.CreatedModSeq, ChangesEpoch: h.ChangesEpoch,
		},
		Mailbox: api.MailboxHeader{Type: m.Type, Name: m.Name, UniqueID: m.UniqueID, QuotaRoot: m.QuotaRoot,
			ACL: m.ACL, UserFlags: m.UserFlags, CRC: m.CRC},
		Scanned: idx.Scanned,
		Records: len(idx.Records),
	}
}

func indexRecord(r *cyrusindex.Record) api.IndexRecord {
	out := api.IndexRecord{
		UID: r.UID, InternalDate: r.InternalDate, SentDate: r.SentDate, Size: r.Size, HeaderSize: r.HeaderSize,
		GMTime: r.GMTime, LastUpdated: r.LastUpdated, SystemFlags: r.SystemFlags, InternalFlags: r.InternalFlags,
		UserFlags: r.UserFlags, SaveDate: r.SaveDate, GUID: r.GUIDHex(), ModSeq: r.ModSeq, ThrID: r.ThrID,
		CreatedModSeq: r.CreatedModSeq, Flags: r.Flags,
	}
	for _, a := range r.Annotations {
		out.Annotations = append(out.Annotations, api.IndexAnnotation{Entry: a.Entry, UserID: a.UserID, ModSeq: a.ModSeq, Value: a.Value})
	}
	return out
}
