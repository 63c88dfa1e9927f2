package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cyrusrepl/cyrusrepl/internal/csync"
	"github.com/cyrusrepl/cyrusrepl/internal/cyrusindex"
	"github.com/cyrusrepl/cyrusrepl/internal/executor"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxdb"
	"github.com/cyrusrepl/cyrusrepl/internal/mboxname"
	"github.com/cyrusrepl/cyrusrepl/internal/replication"
	"github.com/cyrusrepl/cyrusrepl/internal/report"
	"github.com/cyrusrepl/cyrusrepl/internal/state"
)

// commonFlags are the flags every replicating mode shares.
type commonFlags struct {
	master, replica                     string
	masterUser, replicaUser             string
	masterPasswordFile, replicaPassFile string
	masterConfig                        string
	indexDeltas                         bool
	replicaCache                        bool
	masterPartitions                    partitionDirs
	cyrusBin                            string
	mboxdbReader                        string
	workers                             int
	reportFile                          string
	stateDir                            string
	pair                                string
	replicaOnlyPolicy                   string
	masterTLS, replicaTLS               tlsEnd
	agent                               agentFlags
	// deferAgentSettings: open does not ask the agent for the master's settings; the
	// mode does, retrying while the agent does not answer (rolling). One-shot modes
	// ask in open and exit 2 when the agent cannot be had.
	deferAgentSettings bool
	compress           bool
	deletedPrefix      string
	timeout            time.Duration
	batchTimeout       time.Duration
	// writerWait is how long a batch waits for another writer of one of its users; a
	// mode sets its default before bind.
	writerWait time.Duration
	// holdUnmarked: keep replica folders the master deleted whose in-step mark is
	// unknown; every mode but sync/verify --delete-unmarked.
	holdUnmarked bool
	// state identifies the state directory (set by open).
	state report.State
	// versions follows the servers' csync greetings (versionWatch, setup.go).
	versions versionWatch
	// replicaPartitions: partitions the replica is known to have, shared by the executors.
	replicaPartitions *executor.PartitionSet

	masterPassword, replicaPassword string
	sinkFactories                   []func() (report.Sink, error)
	stats                           csyncStats // every session's commands, for csync-stats and /metrics
	progress                        progressFlags
	fs                              *flag.FlagSet
}

// sinkFlagHooks lets other files add report sinks with their own flags (e.g. the
// Kubernetes ConfigMap publisher): each hook binds its flags and returns a factory that
// yields nil when its flags were not given.
var sinkFlagHooks []func(fs *flag.FlagSet) func() (report.Sink, error)

func (c *commonFlags) bind(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.master, "master", "", "master sync_server HOST:PORT (read only: GET commands)")
	fs.StringVar(&c.replica, "replica", "", "replica sync_server HOST:PORT")
	fs.StringVar(&c.masterUser, "master-user", "repl", "csync admin user on the master")
	fs.StringVar(&c.replicaUser, "replica-user", "repl", "csync admin user on the replica")
	fs.StringVar(&c.masterPasswordFile, "master-password-file", "", "file holding the master password (else $CYRUSREPL_MASTER_PASSWORD)")
	fs.StringVar(&c.replicaPassFile, "replica-password-file", "", "file holding the replica password (else $CYRUSREPL_REPLICA_PASSWORD)")
	fs.StringVar(&c.masterConfig, "master-config", "", "the master's imapd.conf: read tombstones and name history from its mailboxes.db (optional; see --mailboxes-db-reader)")
	fs.BoolVar(&c.indexDeltas, "index-deltas", true, "with --agent, or with --master-config when the master's partitions are readable here: update a folder by sending only the records changed since the replica's state, read from the master's cyrus.index under Cyrus's shared lock (by the agent with --agent), instead of reading every record with GET FULLMAILBOX (the fallback on any doubt, counted in csync-stats as end master-index)")
	fs.BoolVar(&c.replicaCache, "replica-cache", true, "with --index-deltas: plan the update of a folder this replicator wrote last from its record in the state directory's ledger instead of reading the folder on the replica (which makes Cyrus scan all its records); the update's SINCE_* has the replica refuse it, before writing, if the folder changed since, and the replica is then read (counted in csync-stats as end replica-state)")
	fs.Var(&c.masterPartitions, "master-partition", "NAME=DIR: the master's partition NAME (partition-NAME in its imapd.conf) is mounted at DIR here, for --index-deltas (repeatable; default: the directories imapd.conf names)")
	fs.StringVar(&c.mboxdbReader, "mailboxes-db-reader", mboxdb.BackendGo, "how --master-config's mailboxes.db is read: 'go', the built-in twoskip reader (no lock taken, finds a batch's records through the skip list), or 'cyr_dbtool', Cyrus's tool from --cyrus-bin (a process per batch)")
	fs.StringVar(&c.cyrusBin, "cyrus-bin", mboxdb.DefaultCyrusBin, "directory of Cyrus's tools, for --mailboxes-db-reader=cyr_dbtool")
	fs.IntVar(&c.workers, "workers", 4, "users (batches) replicated in parallel, each on its own connections")
	fs.StringVar(&c.reportFile, "report", "", "write the JSON report.Summary to this file (atomically)")
	fs.StringVar(&c.stateDir, "state-dir", "/var/lib/cyrusrepl", "directory for the ledger of master uniqueids, the retry queue, the per-user writer locks and state.json; back it with a volume so it survives restarts (replicators sharing it never write one user at once)")
	fs.StringVar(&c.pair, "pair", "", "pair name recorded in every decision and report")
	fs.StringVar(&c.replicaOnlyPolicy, "replica-only-policy", replication.PolicyKeep,
		"replica folders the master never had (no evidence): 'keep' keeps and reports them, the user still counts as synced; 'fail' keeps and reports them and counts the user as differing (exit 1). They are never deleted.")
	fs.BoolVar(&c.compress, "compress", false, "COMPRESS DEFLATE on both connections when the server offers it (as sync_client always does); worth it on slow links, costs CPU on fast ones")
	c.masterTLS.bind(fs, "master")
	c.replicaTLS.bind(fs, "replica")
	c.agent.bind(fs)
	fs.StringVar(&c.deletedPrefix, "deleted-prefix", "", "the master's deletedprefix (its delayed-delete namespace); default: read from --master-config, else Cyrus's default DELETED")
	fs.DurationVar(&c.timeout, "io-timeout", 60*time.Second, "idle I/O timeout per csync read/write (keep below the servers' sync_timeout)")
	fs.DurationVar(&c.batchTimeout, "batch-timeout", 30*time.Minute, "cut a batch attempt that makes no progress (no message bytes moved, no action done) for this long, so a stuck user cannot hold a worker; a slow one that moves is never cut")
	if c.writerWait == 0 {
		c.writerWait = 30 * time.Second
	}
	fs.DurationVar(&c.writerWait, "writer-lock-wait", c.writerWait, "how long a batch waits for another replicator writing one of its users (one sharing --state-dir, e.g. a resync beside the rolling replicator) before the batch fails and is retried")
	c.progress.bind(fs)
	for _, h := range sinkFlagHooks {
		c.sinkFactories = append(c.sinkFactories, h(fs))
	}
}

// check validates the flags and loads the passwords.
func (c *commonFlags) check() error {
	if c.master == "" || c.replica == "" {
		return usageErrorf("--master and --replica are required")
	}
	for _, a := range []string{c.master, c.replica} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return usageErrorf("bad address %q: %v", a, err)
		}
	}
	if err := c.agent.check(c.masterConfig); err != nil {
		return err
	}
	if len(c.masterPartitions) > 0 && c.masterConfig == "" {
		return usageErrorf("--master-partition needs --master-config (an agent reads the partitions its own imapd.conf names)")
	}
	if c.workers < 1 {
		return usageErrorf("--workers must be at least 1")
	}
	if err := c.progress.check(); err != nil {
		return err
	}
	switch c.replicaOnlyPolicy {
	case replication.PolicyKeep, replication.PolicyFail:
	default:
		return usageErrorf("--replica-only-policy must be %q or %q", replication.PolicyKeep, replication.PolicyFail)
	}
	var err error
	if c.masterPassword, err = secret(c.masterPasswordFile, "CYRUSREPL_MASTER_PASSWORD"); err != nil {
		return err
	}
	if c.replicaPassword, err = secret(c.replicaPassFile, "CYRUSREPL_REPLICA_PASSWORD"); err != nil {
		return err
	}
	if err := os.MkdirAll(c.stateDir, 0o700); err != nil {
		return usageErrorf("--state-dir: %v", err)
	}
	for _, e := range []struct {
		end  *tlsEnd
		side string
	}{{&c.masterTLS, "master"}, {&c.replicaTLS, "replica"}} {
		if err := e.end.check(e.side); err != nil {
			return err
		}
		if e.end.mode == tlsNone && c.fs != nil {
			fmt.Fprintf(c.fs.Output(), "warning: --%s-tls none: the %s password crosses the network in clear\n", e.side, e.side)
		}
	}
	return c.applyMasterSettings()
}

// applyMasterSettings reads the master's imapd.conf (when given) and sets the deleted
// namespace's prefix from it or from --deleted-prefix; the two must agree.
func (c *commonFlags) applyMasterSettings() error {
	prefix := c.deletedPrefix
	if c.masterConfig != "" {
		s, err := mboxname.ReadMasterSettings(c.masterConfig)
		if err != nil {
			return usageErrorf("--master-config: %v", err)
		}
		if prefix != "" && prefix != s.DeletedPrefix {
			return usageErrorf("--deleted-prefix %q contradicts the master's imapd.conf (deletedprefix %q)", prefix, s.DeletedPrefix)
		}
		prefix = s.DeletedPrefix
	}
	if prefix == "" {
		prefix = mboxname.DefaultMasterSettings.DeletedPrefix
	}
	if err := mboxname.SetDeletedPrefix(prefix); err != nil {
		return usageErrorf("--deleted-prefix: %v", err)
	}
	return nil
}

func secret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageErrorf("password file: %v", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", usageErrorf("no password: give a password file or set $%s", env)
}

// connector returns a function that opens an executor: a read-only master session and
// a replica session, plus the evidence sources.
func (c *commonFlags) connector() (replication.Connector, error) {
	mopt, err := c.masterTLS.options(c.master, csync.Options{Username: c.masterUser, Password: c.masterPassword, Timeout: c.timeout, CompressIfOffered: c.compress, Observe: c.stats.observer("master")})
	if err != nil {
		return nil, err
	}
	ropt, err := c.replicaTLS.options(c.replica, csync.Options{Username: c.replicaUser, Password: c.replicaPassword, Timeout: c.timeout, CompressIfOffered: c.compress, Observe: c.stats.observer("replica")})
	if err != nil {
		return nil, err
	}
	ledger, err := state.OpenLedger(c.stateDir)
	if err != nil {
		return nil, usageErrorf("--state-dir: %v", err)
	}
	writers, err := state.OpenUserLocks(c.stateDir, c.writerWait)
	if err != nil {
		return nil, usageErrorf("--state-dir: %v", err)
	}
	c.replicaPartitions = executor.NewPartitionSet()
	evidence, err := c.mailboxesDB()
	if err != nil {
		return nil, usageErrorf("--master-config: %v", err)
	}
	masterIndex := c.masterIndex()
	var forUsers func(ctx context.Context, users, uids []string) (*mboxdb.DB, error)
	if evidence != nil {
		forUsers = evidence.ForUsers
	}
	return func(ctx context.Context) (*executor.Executor, error) {
		m, err := csync.DialMaster(ctx, c.master, mopt)
		if err != nil {
			return nil, fmt.Errorf("master: %w", describeDialError(err, c.master, c.masterUser))
		}
		r, err := csync.DialReplica(ctx, c.replica, ropt)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("replica: %w", describeDialError(err, c.replica, c.replicaUser))
		}
		c.versions.saw([2]string{m.Capabilities().Greeting, r.Capabilities().Greeting})
		return &executor.Executor{
			Pair: c.pair, Master: m, Replica: r, Ledger: ledger, Writers: writers, HoldUnmarked: c.holdUnmarked, MailboxesDB: forUsers,
			ReplicaPartitions: c.replicaPartitions,
			MasterIndex:       masterIndex, IndexStats: c.stats.index,
			ReplicaCache: c.replicaCache, CacheStats: c.stats.cache,
			Moved: c.progress.moved,
			Close: func() {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = m.Exit(cctx)
				_ = r.Exit(cctx)
				m.Close()
				r.Close()
			},
		}, nil
	}, nil
}

// mailboxesDB is where the master's mailboxes.db is read from: the master's agent
// (--agent), or the file named by the master's imapd.conf (--master-config); nil
// without either.
func (c *commonFlags) mailboxesDB() (mboxdb.Source, error) {
	if c.agent.client != nil {
		return c.agent.client, nil
	}
	if c.masterConfig == "" {
		return nil, nil
	}
	db, err := mboxdb.NewReader(c.cyrusBin, c.masterConfig)
	if err != nil {
		return nil, err
	}
	switch c.mboxdbReader {
	case mboxdb.BackendGo, "":
	case mboxdb.BackendCyrDBTool:
		if err := db.UseCyrDBTool(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("--mailboxes-db-reader %q: want %s or %s", c.mboxdbReader, mboxdb.BackendGo, mboxdb.BackendCyrDBTool)
	}
	return db, nil
}

// masterIndex returns the reader of the master's mailbox indexes — the agent with
// --agent, else the partitions of --master-config — or nil (with a warning when deltas
// were wanted but the partitions cannot be read from here).
func (c *commonFlags) masterIndex() cyrusindex.Source {
	if !c.indexDeltas {
		return nil
	}
	if c.agent.client != nil {
		return c.agent.client // the agent reads the indexes on the master's disk
	}
	if c.masterConfig == "" {
		return nil
	}
	idx, err := cyrusindex.NewLocal(c.masterConfig, c.masterPartitions)
	if err != nil {
		if c.fs != nil {
			fmt.Fprintf(c.fs.Output(), "warning: updates read every record with GET FULLMAILBOX: the master's indexes cannot be read here: %v\n", err)
		}
		return nil
	}
	return idx
}

// probe dials both servers once, so that a wrong address or password exits with
// exitUsage before any work starts. It returns the connector to work with: its first
// call within warmFor gets the probe's own sessions (a one-pass run then logs in to
// each server once, not twice); later calls dial.
func (c *commonFlags) probe(ctx context.Context, connect replication.Connector) (replication.Connector, error) {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	x, err := connect(pctx)
	if err != nil {
		return nil, usageError{err}
	}
	c.versions.saw(bannersOf(x))
	return newWarmConnector(x, connect, warmFor).connect, nil
}

// newWarmConnector hands x to the first caller within d, then dials. Not taken in
// time (nothing to do, or a long wait for the first batch), x is closed rather than
// handed out after the servers may have timed its sessions out.
func newWarmConnector(x *executor.Executor, dial replication.Connector, d time.Duration) *warmConnector {
	w := &warmConnector{dial: dial, x: x}
	w.expire = time.AfterFunc(d, func() { w.take().closeIfAny() })
	return w
}

// warmFor is how long the probe's sessions wait for their first batch.
const warmFor = 20 * time.Second

// warmConnector hands out one already open executor, once, then dials.
type warmConnector struct {
	dial   replication.Connector
	mu     sync.Mutex
	x      *executor.Executor
	expire *time.Timer
}

type maybeExecutor struct{ x *executor.Executor }

func (m maybeExecutor) closeIfAny() {
	if m.x != nil && m.x.Close != nil {
		m.x.Close()
	}
}

func (w *warmConnector) take() maybeExecutor {
	w.mu.Lock()
	defer w.mu.Unlock()
	x := w.x
	w.x = nil
	return maybeExecutor{x}
}

func (w *warmConnector) connect(ctx context.Context) (*executor.Executor, error) {
	if m := w.take(); m.x != nil {
		w.expire.Stop()
		return m.x, nil
	}
	return w.dial(ctx)
}

// flagsCheckOnly makes open stop, with errFlagsChecked, once the flags are parsed and
// checked (files read, TLS configs built) and before any report sink or connection: a
// test feeds the operator's generated arguments through the real parser this way.
var flagsCheckOnly bool

var errFlagsChecked = errors.New("flags checked, stopping before any connection")

// open validates the common flags, builds the connector and the report sink, and proves
// that both servers answer to an admin before any work starts: what every replicating
// mode does first. Its errors are usage errors (exit 2).
func (c *commonFlags) open(ctx context.Context) (replication.Connector, report.Sink, error) {
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	// Before the ledger is opened: an empty directory is a new state.
	st, err := state.OpenStateID(c.stateDir, time.Now())
	if err != nil {
		return nil, nil, usageErrorf("--state-dir: %v", err)
	}
	c.state = st
	if c.agent.url != "" {
		if err := c.agentSettings(ctx); err != nil {
			return nil, nil, err
		}
	}
	connect, err := c.connector()
	if err != nil {
		return nil, nil, err
	}
	if flagsCheckOnly {
		return nil, nil, errFlagsChecked
	}
	sink, err := c.sink()
	if err != nil {
		return nil, nil, err
	}
	if connect, err = c.probe(ctx, connect); err != nil {
		return nil, nil, err
	}
	return connect, sink, nil
}

// agentSettings opens the agent's client and, unless deferred, applies the master's
// settings it serves. An agent that cannot be reached or refuses is a usage error.
func (c *commonFlags) agentSettings(ctx context.Context) error {
	if err := c.agent.open(c.fs.Name(), c.state.ID); err != nil {
		return err
	}
	if flagsCheckOnly || c.deferAgentSettings {
		return nil
	}
	cfg, err := c.agent.settings(ctx)
	if err != nil {
		return usageError{err}
	}
	return applyAgentSettings(cfg, c.deletedPrefix)
}

func (c *commonFlags) sink() (report.Sink, error) {
	var ss report.Sinks
	if c.reportFile != "" {
		if err := os.MkdirAll(filepath.Dir(c.reportFile), 0o755); err != nil {
			return nil, usageErrorf("--report: %v", err)
		}
		ss = append(ss, report.FileSink{Path: c.reportFile})
	}
	for _, f := range c.sinkFactories {
		s, err := f()
		if err != nil {
			return nil, usageError{err}
		}
		if s != nil {
			ss = append(ss, s)
		}
	}
	return ss, nil
}

// jsonLines writes one JSON object per line, safely from many goroutines.
type jsonLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (j *jsonLines) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, _ = j.w.Write(append(b, '\n'))
}

// userList collects repeated --user flags (commas also separate).
// partitionDirs are --master-partition NAME=DIR flags.
type partitionDirs map[string]string

func (p *partitionDirs) String() string {
	var s []string
	for k, v := range *p {
		s = append(s, k+"="+v)
	}
	return strings.Join(s, ",")
}

func (p *partitionDirs) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || !filepath.IsAbs(dir) {
		return fmt.Errorf("want NAME=/absolute/dir, got %q", v)
	}
	if *p == nil {
		*p = partitionDirs{}
	}
	(*p)[name] = dir
	return nil
}

type userList []string

func (u *userList) String() string { return strings.Join(*u, ",") }

func (u *userList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*u = append(*u, s)
		}
	}
	return nil
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageError{err}
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// stateLine is the JSON line that says which state directory a run uses, and whether
// it began empty (new, or lost since the last run).
type stateLine struct {
	Type string `json:"type"` // "state"
	report.State
}

// recorder starts the run's report with the state directory's identity, and says it.
func (c *commonFlags) recorder(mode string, out *jsonLines) *replication.Recorder {
	rec := replication.NewRecorder(mode, c.pair, time.Now().UTC())
	rec.SetState(c.state)
	out.emit(stateLine{Type: "state", State: c.state})
	c.versions.attach(rec, out)
	return rec
}
