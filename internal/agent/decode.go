package agent

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
)

// request is an API request, decoded and checked: nothing in it is used as a file name.
type request struct {
	path   string             // one of the api.Path* constants
	wait   time.Duration      // lease: the long-poll bound
	lease  string             // ack: the lease id (32 lower-case hex digits)
	lookup *api.LookupRequest // lookup: the names to look up
	index  *api.IndexRequest  // index: the folder whose index is read
}

// statusError is an error answered with its own status code.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &statusError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// routes are the methods each path answers.
var routes = map[string]string{
	api.PathHealthz: http.MethodGet,
	api.PathReadyz:  http.MethodGet,
	api.PathMetrics: http.MethodGet,
	api.PathConfig:  http.MethodGet,
	api.PathBacklog: http.MethodGet,
	api.PathLease:   http.MethodPost,
	api.PathAck:     http.MethodPost,
	api.PathUsers:   http.MethodGet,
	api.PathLookup:  http.MethodPost,
	api.PathIndex:   http.MethodPost,
}

// decodeRequest checks and decodes one request: the path must be one of the API's,
// exactly (no cleaning, so "..", "//" or escapes never match), the method its own, the
// query and the body what that path takes and nothing else.
func decodeRequest(method, path, rawQuery string, body []byte) (request, error) {
	want, ok := routes[path]
	if !ok {
		return request{}, &statusError{code: http.StatusNotFound, msg: "no such path"}
	}
	if method != want && !(want == http.MethodGet && method == http.MethodHead) {
		return request{}, &statusError{code: http.StatusMethodNotAllowed, msg: fmt.Sprintf("%s takes %s", path, want)}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return request{}, badRequest("bad query: %v", err)
	}
	r := request{path: path}
	allowed := map[string]bool{}
	switch path {
	case api.PathLease:
		allowed["wait"] = true
		if r.wait, err = parseWait(q); err != nil {
			return request{}, err
		}
	case api.PathAck:
		allowed["lease"] = true
		if r.lease, err = parseLeaseID(q); err != nil {
			return request{}, err
		}
	case api.PathLookup:
		if r.lookup, err = decodeLookup(body); err != nil {
			return request{}, err
		}
	case api.PathIndex:
		if r.index, err = decodeIndexRequest(body); err != nil {
			return request{}, err
		}
	}
	for k := range q {
		if !allowed[k] {
			return request{}, badRequest("unknown query parameter %q", k)
		}
	}
	if path != api.PathLookup && path != api.PathIndex && len(body) > 0 {
		return request{}, badRequest("%s takes no body", path)
	}
	return r, nil
}

func parseWait(q url.Values) (time.Duration, error) {
	vs := q["wait"]
	switch {
	case len(vs) == 0:
		return api.DefaultWait, nil
	case len(vs) > 1:
		return 0, badRequest("wait given more than once")
	}
	d, err := time.ParseDuration(vs[0])
	if err != nil || d < 0 {
		return 0, badRequest("wait %q: want a duration such as 10s", vs[0])
	}
	return min(d, api.MaxWait), nil
}

func parseLeaseID(q url.Values) (string, error) {
	vs := q["lease"]
	if len(vs) != 1 {
		return "", badRequest("want exactly one lease parameter")
	}
	id := vs[0]
	if len(id) != 32 || strings.ToLower(id) != id {
		return "", badRequest("lease %q: want 32 lower-case hex digits", id)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", badRequest("lease %q: want 32 lower-case hex digits", id)
	}
	return id, nil
}

// decodeLookup decodes a lookup body strictly (no unknown fields, one JSON value) and
// checks every name.
func decodeLookup(body []byte) (*api.LookupRequest, error) {
	if len(body) > api.MaxBody {
		return nil, &statusError{code: http.StatusRequestEntityTooLarge, msg: "body too large"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var l api.LookupRequest
	if err := dec.Decode(&l); err != nil {
		return nil, badRequest("lookup body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("lookup body: more than one JSON value")
	}
	if len(l.Users) > api.MaxNames || len(l.UniqueIDs) > api.MaxNames {
		return nil, badRequest("lookup: at most %d users and %d uniqueids", api.MaxNames, api.MaxNames)
	}
	for _, u := range l.Users {
		if err := checkName("user", u); err != nil {
			return nil, err
		}
	}
	for _, id := range l.UniqueIDs {
		if err := checkName("uniqueid", id); err != nil {
			return nil, err
		}
	}
	return &l, nil
}

// checkName refuses a user name or uniqueid that no Cyrus name can be: empty, too long,
// not UTF-8, with a control character or a '/' (which Cyrus never stores in a name:
// refusing it keeps anything path-like out, even though names are only looked up in
// mailboxes.db).
func checkName(what, s string) error {
	if s == "" || len(s) > api.MaxNameLen || !utf8.ValidString(s) {
		return badRequest("%s %q: want 1 to %d bytes of UTF-8", what, s, api.MaxNameLen)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '/' {
			return badRequest("%s %q: control character or '/'", what, s)
		}
	}
	return nil
}
