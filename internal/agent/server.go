// Package agent is the master agent's server: it serves a replicator what only the
// master's disk holds — the sync-log channel (leased), mailboxes.db lookups, the
// imapd.conf settings and mailbox indexes — over the HTTP API of docs/agent.md. It never
// turns anything of a request into a file name but a checked uniqueid, through the
// index reader's uniqueid → directory mapping under a partition imapd.conf names.
package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/agent/api"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/synclog"
)

// Options configure a Server.
type Options struct {
	MasterConfig string        // the master's imapd.conf
	Channel      string        // sync-log channel ("": the unnamed one)
	TokenFile    string        // bearer token, re-read when it changes
	LeaseTTL     time.Duration // longest unacknowledged lease (0: 5 minutes)
	Log          *slog.Logger
}

// Server answers the API. It is an http.Handler.
type Server struct {
	conf    string
	channel string
	log     *synclog.Dir
	mboxdb  *mboxdb.Reader
	token   *tokenFile
	ch      *channel
	m       *metrics
	logger  *slog.Logger
}

// ChannelDir is the directory of a sync-log channel: <configdir>/sync for the unnamed
// channel, <configdir>/sync/<name> for a named one.
func ChannelDir(configDir, name string) string {
	if name == "" {
		return filepath.Join(configDir, "sync")
	}
	return filepath.Join(configDir, "sync", name)
}

// CheckChannelName refuses a channel name that is not one directory name.
func CheckChannelName(name string) error {
	if name == "." || name == ".." || filepath.Base(name) != name || len(name) > 255 {
		return fmt.Errorf("channel %q: want one directory name", name)
	}
	return nil
}

// New reads the master's imapd.conf (configdirectory, deletedprefix) and returns the
// server. The deleted prefix is set for this process (names are parsed with it).
func New(o Options) (*Server, error) {
	if o.Channel != "" {
		if err := CheckChannelName(o.Channel); err != nil {
			return nil, err
		}
	}
	conf, err := filepath.Abs(o.MasterConfig)
	if err != nil {
		return nil, err
	}
	ms, err := mboxname.ReadMasterSettings(conf)
	if err != nil {
		return nil, err
	}
	if err := mboxname.SetDeletedPrefix(ms.DeletedPrefix); err != nil {
		return nil, err
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	m := newMetrics()
	logDir := synclog.NewDir(ChannelDir(ms.ConfigDirectory, o.Channel))
	return &Server{
		conf: conf, channel: o.Channel, log: logDir, m: m, logger: o.Log,
		mboxdb: &mboxdb.Reader{Config: conf, DB: filepath.Join(ms.ConfigDirectory, "mailboxes.db"), Backend: mboxdb.BackendGo},
		token:  &tokenFile{path: o.TokenFile},
		ch:     &channel{name: o.Channel, log: logDir, ttl: o.LeaseTTL, m: m},
	}, nil
}

// ChannelDir is the directory of the channel served.
func (s *Server) ChannelDir() string { return s.log.Path }

// ServeHTTP decodes, authenticates and answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &recorder{ResponseWriter: w}
	endpoint := r.URL.Path
	if _, ok := routes[endpoint]; !ok {
		endpoint = "other" // bounded label values
	}
	defer func() { s.m.request(endpoint, rw.status()) }()
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, api.MaxBody))
	if err != nil {
		s.fail(rw, &statusError{code: http.StatusRequestEntityTooLarge, msg: "body too large"})
		return
	}
	req, err := decodeRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body)
	if err != nil {
		s.fail(rw, err)
		return
	}
	switch req.path {
	case api.PathHealthz:
		fmt.Fprintln(rw, "ok")
		return
	case api.PathReadyz:
		s.ready(rw)
		return
	}
	if !s.token.check(bearer(r.Header.Get("Authorization"))) {
		rw.Header().Set("WWW-Authenticate", `Bearer realm="cyrusrepl-agent"`)
		s.fail(rw, &statusError{code: http.StatusUnauthorized, msg: "missing or wrong bearer token"})
		return
	}
	switch req.path {
	case api.PathMetrics:
		p := s.ch.observe()
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.m.write(rw, p.Entries, p.Since, time.Now())
	case api.PathConfig:
		c, err := s.readConfig()
		s.answer(rw, c, err)
	case api.PathBacklog:
		p := s.ch.observe()
		b := api.Backlog{Entries: p.Entries}
		if !p.Since.IsZero() {
			b.Since = p.Since.UTC().Format(time.RFC3339Nano)
		}
		s.answer(rw, b, nil)
	case api.PathLease:
		s.serveLease(rw, r, req.wait)
	case api.PathAck:
		if err := s.ch.ack(req.lease); err != nil {
			s.fail(rw, err)
			return
		}
		s.logger.Info("lease acknowledged", "lease", req.lease, "channel", s.channel)
		rw.WriteHeader(http.StatusNoContent)
	case api.PathUsers:
		users, err := s.mboxdb.Users(r.Context())
		if users == nil {
			users = []string{}
		}
		s.answer(rw, api.Users{Users: users}, err)
	case api.PathLookup:
		db, err := s.mboxdb.ForUsers(r.Context(), req.lookup.Users, req.lookup.UniqueIDs)
		s.answer(rw, evidenceOf(db), err)
	case api.PathIndex:
		s.serveIndex(r.Context(), rw, req.index)
	}
}

// ready: the master's files this agent serves are there.
func (s *Server) ready(w http.ResponseWriter) {
	check := func() error {
		if _, err := mboxname.ReadMasterSettings(s.conf); err != nil {
			return err
		}
		if _, err := os.Stat(s.log.Path); err != nil {
			return fmt.Errorf("channel directory: %w", err)
		}
		if _, err := os.Stat(s.mboxdb.DB); err != nil {
			return fmt.Errorf("mailboxes.db: %w", err)
		}
		return nil
	}
	if err := check(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func evidenceOf(db *mboxdb.DB) api.Evidence {
	e := api.Evidence{Live: map[string]string{}, Tombstones: map[string]api.Tombstone{}, History: map[string][]string{}, Bad: []string{}}
	if db == nil {
		return e
	}
	e.Live, e.History = db.Live, db.History
	for id, t := range db.Tombstones {
		e.Tombstones[id] = api.Tombstone{UniqueID: t.UniqueID, Name: t.Name, Orphan: t.Orphan, MTime: t.MTime}
	}
	if db.Bad != nil {
		e.Bad = db.Bad
	}
	return e
}

// answer writes v as JSON, or err as a 500.
func (s *Server) answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers an error: its own status for a statusError, else 500 (logged: it is the
// agent's trouble, not the client's).
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var se *statusError
	if errors.As(err, &se) {
		code = se.code
	} else {
		s.logger.Error("request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Error{Error: err.Error()})
}

// recorder remembers the status code written, for the metrics.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
