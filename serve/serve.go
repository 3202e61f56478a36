// Package serve speaks the MySQL replication protocol as a primary, from
// archived binlog: a MariaDB replica connects to it as to its primary
// (MASTER_USE_GTID=slave_pos, or a file and position) and replicates the
// archive, with its own applier. binarc restore replays through it, and a
// rebuilt replica catches up from it when the primary no longer has the
// binlogs.
//
// go-mysql's server package does the handshake and authentication and
// writes result sets; the replication commands are handled here, on the
// raw packets, the way MariaDB's binlog sender does (sql/sql_repl.cc).
//
// A MariaDB 10.11 replica, logged connecting with MASTER_USE_GTID=slave_pos,
// sends: SELECT UNIX_TIMESTAMP(); SHOW VARIABLES LIKE 'SERVER_ID'; SET
// @master_heartbeat_period=…; SET @master_binlog_checksum=
// @@global.binlog_checksum; SELECT @master_binlog_checksum; SET
// @mariadb_slave_capability=4; SELECT @@GLOBAL.gtid_domain_id; SET
// @slave_connect_state='…'; SET @slave_gtid_strict_mode=0; SET
// @slave_gtid_ignore_duplicates=0; then COM_REGISTER_SLAVE and
// COM_BINLOG_DUMP. By file and position it leaves out the GTID settings.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/binarc/binarc/replication"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/rs/zerolog"
)

// Version is the server version binarc serve announces: a MariaDB one, so
// that replicas use MariaDB's replication dialect (GTID, capabilities).
const Version = "5.5.5-10.11.99-MariaDB-binarc-serve"

// Config says what to serve and to whom.
type Config struct {
	Source Source
	// User and Password are the one account replicas authenticate with
	// (mysql_native_password).
	User     string
	Password string
	// ServerID is the server_id replicas see for binarc; it must differ from
	// theirs. The archive's primary's id is the natural choice.
	ServerID uint32
	// Stop ends every stream at a transaction boundary; the zero Stop with
	// Follow false ends it after the last archived transaction.
	Stop Stop
	// Skip lists GTIDs of transactions to leave out.
	Skip []string
	// Follow keeps streaming as the archive grows.
	Follow bool
	// Poll is how often a following stream looks for new segments.
	Poll time.Duration
	Log  zerolog.Logger
	// Reached, if set, hears, when a stream reaches Stop or the archive's
	// end, where the last transaction it sent ends (the zero Position when
	// it sent none): a replica that has applied up to there has it all.
	Reached func(replication.Position)
	// Progress, if set, hears the bytes and transactions sent.
	Progress func(ProgressInfo)
}

// ProgressInfo is how far a stream has got.
type ProgressInfo struct {
	Bytes        uint64 // binlog bytes sent
	Transactions uint64 // event groups sent
	Skipped      uint64 // event groups left out (--skip-gtid)
	Position     replication.Position
}

// Stop is where streams end: before the first transaction at or after
// Time, at the transaction boundary Position, or just after the
// transaction GTID. At most one is set.
type Stop struct {
	Time     time.Time
	Position replication.Position
	GTID     string
}

// IsZero tells whether no stop is set.
func (s Stop) IsZero() bool { return s.Time.IsZero() && s.Position.File == "" && s.GTID == "" }

// Server serves replicas.
type Server struct {
	cfg  Config
	mu   sync.Mutex
	conn map[net.Conn]struct{}
	wg   sync.WaitGroup
}

// New checks the configuration.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("serve: no source")
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("serve: a user and a password are required (BINARC_SERVE_PASSWORD or --password-file)")
	}
	if cfg.ServerID == 0 {
		return nil, errors.New("serve: --server-id 0: a primary needs a non-zero server id")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	for _, g := range cfg.Skip {
		if _, err := parseGTID(g); err != nil {
			return nil, fmt.Errorf("--skip-gtid %q: %w", g, err)
		}
	}
	return &Server{cfg: cfg, conn: map[net.Conn]struct{}{}}, nil
}

// Serve accepts replicas on ln until ctx is done, each in its own
// goroutine; a failed connection never stops the others.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conn {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	srv := server.NewServer(Version, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil)
	var err error
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil {
			break
		}
		s.mu.Lock()
		s.conn[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conn, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			s.handle(ctx, srv, nc)
		}()
	}
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// handle runs one client connection: handshake, then commands.
func (s *Server) handle(ctx context.Context, srv *server.Server, nc net.Conn) {
	log := s.cfg.Log.With().Str("replica", nc.RemoteAddr().String()).Logger()
	h := &session{srv: s, vars: map[string]any{}, log: log}
	// go-mysql's in-memory handler defaults to caching_sha2_password,
	// which MariaDB replicas do not have: the account is native.
	auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_NATIVE_PASSWORD)
	if err := auth.AddUser(s.cfg.User, s.cfg.Password); err != nil {
		log.Error().Err(err).Msg("cannot set up the replicas' account")
		return
	}
	bc := newBufferedConn(nc)
	c, err := srv.NewCustomizedConn(bc, auth, h)
	if err != nil {
		// go-mysql has sent the replica "Access denied" already.
		log.Warn().Err(err).Msg("replica refused at the handshake")
		return
	}
	h.conn, h.out = c, bc
	bc.on.Store(true)
	for {
		data, err := c.ReadPacket()
		if err != nil {
			return
		}
		if len(data) == 0 {
			return
		}
		err = h.command(ctx, data)
		if ferr := bc.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			if !errors.Is(err, errQuit) && ctx.Err() == nil {
				log.Info().Err(err).Msg("replica connection closed")
			}
			return
		}
		c.ResetSequence()
	}
}

// newestHead reads the head of the newest archived file: its checksum
// setting and GTID state are what @@binlog_checksum and @@gtid_domain_id
// answer.
func (s *Server) newestHead(ctx context.Context) (*fileHead, []File) {
	files, err := s.cfg.Source.Files(ctx)
	if err != nil || len(files) == 0 {
		return nil, nil
	}
	h, err := readHead(ctx, s.cfg.Source, files[len(files)-1])
	if err != nil {
		return nil, files
	}
	return h, files
}

// checksums tells whether the newest archived file has CRC32 checksums.
func (s *Server) checksums(ctx context.Context) bool {
	h, _ := s.newestHead(ctx)
	return h != nil && fileChecksum(h.FDE)
}

// domain is the GTID domain of the newest archived transaction.
func (s *Server) domain(ctx context.Context) uint32 {
	h, files := s.newestHead(ctx)
	for i := len(files) - 1; i >= 0; i-- {
		if g, err := parseGTID(files[i].LastGTID); err == nil {
			return g.Domain
		}
	}
	if h != nil && len(h.List) > 0 {
		return h.List[len(h.List)-1].Domain
	}
	return 0
}
