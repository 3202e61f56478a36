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
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
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
	// TLS, if set, is required of every client: one that does not ask
	// for TLS is refused before it sends its login (TLSFiles.Config).
	TLS *tls.Config
	// Limits bound connections before login and outside dumps; zero
	// fields take DefaultLimits.
	Limits Limits
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
	cfg     Config
	conns   *connTable
	wg      sync.WaitGroup
	refused logLimiter // connections over a limit
	failed  logLimiter // handshakes that failed
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
	lim, err := cfg.Limits.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	cfg.Limits = lim
	return &Server{cfg: cfg, conns: newConnTable(lim),
		refused: logLimiter{every: 10 * time.Second}, failed: logLimiter{every: 10 * time.Second}}, nil
}

// Serve accepts replicas on ln until ctx is done, each in its own
// goroutine; a failed connection never stops the others. Connections
// beyond the limits, and any accepted while shutting down, are closed
// unserved.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		// The table first: a connection Accept returns from here on is
		// refused, even one that raced the listener's close.
		s.conns.closeAll()
		ln.Close()
	})
	defer stop()
	srv := server.NewServer(Version, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, s.cfg.TLS)
	var err error
	var pause time.Duration
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if pause, err = s.acceptFailed(ctx, err, pause); err != nil {
			break
		}
		if nc == nil {
			continue
		}
		if err := s.conns.admit(nc); err != nil {
			s.refuse(nc, err)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.conns.release(nc)
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

// acceptFailed sorts an Accept error: nil goes on; running out of file
// descriptors, or a connection aborted before it was accepted, waits a
// little (longer each time, up to a second) and goes on, as net/http
// does, instead of ending serve; anything else ends it. It returns the
// next pause.
func (s *Server) acceptFailed(ctx context.Context, err error, pause time.Duration) (time.Duration, error) {
	if err == nil {
		return 0, nil
	}
	if ctx.Err() != nil || !(errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED)) {
		return 0, err
	}
	pause = min(max(2*pause, 5*time.Millisecond), time.Second)
	s.refused.event(&s.cfg.Log, zerolog.WarnLevel).Err(err).Dur("retry_in", pause).Msg("accepting a connection failed")
	select {
	case <-ctx.Done():
	case <-time.After(pause):
	}
	return pause, nil
}

// refuse closes a connection admit refused, with "Too many connections"
// when it is over a limit.
func (s *Server) refuse(nc net.Conn, why error) {
	if errors.Is(why, errShuttingDown) {
		nc.Close()
		return
	}
	s.refused.event(&s.cfg.Log, zerolog.WarnLevel).Str("client", nc.RemoteAddr().String()).Err(why).Msg("connection refused")
	refuse(nc, mysql.ER_CON_COUNT_ERROR, "08004", "Too many connections")
}

// handle runs one client connection: handshake, then commands.
func (s *Server) handle(ctx context.Context, srv *server.Server, nc net.Conn) {
	log := s.cfg.Log.With().Str("replica", nc.RemoteAddr().String()).Logger()
	h := &session{srv: s, vars: map[string]any{}, log: log}
	c, bc, err := s.login(srv, nc, h)
	if err != nil {
		s.failed.event(&log, zerolog.WarnLevel).Err(err).Msg("replica refused at the handshake")
		return
	}
	log.Debug().Bool("tls", s.cfg.TLS != nil).Msg("replica logged in")
	h.conn, h.out = c, bc
	for {
		// Between commands the client is idle; a dump sends, and is not
		// timed.
		_ = nc.SetReadDeadline(time.Now().Add(s.cfg.Limits.IdleTimeout))
		data, err := c.ReadPacket()
		if err != nil || len(data) == 0 {
			return
		}
		_ = nc.SetReadDeadline(time.Time{})
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

// login runs the handshake behind the guard, within the handshake
// deadline: TLS if configured, then the one account's password.
func (s *Server) login(srv *server.Server, nc net.Conn, h *session) (*server.Conn, *bufferedConn, error) {
	// go-mysql's in-memory handler defaults to caching_sha2_password,
	// which MariaDB replicas do not have: the account is native.
	auth := server.NewInMemoryAuthenticationHandler(mysql.AUTH_NATIVE_PASSWORD)
	if err := auth.AddUser(s.cfg.User, s.cfg.Password); err != nil {
		return nil, nil, fmt.Errorf("set up the replicas' account: %w", err)
	}
	_ = nc.SetDeadline(time.Now().Add(s.cfg.Limits.HandshakeTimeout))
	g := newGuardConn(nc, s.cfg.TLS, s.cfg.Limits.MaxPreAuthPacket)
	bc := newBufferedConn(g)
	c, err := srv.NewCustomizedConn(bc, auth, h)
	if err != nil {
		// go-mysql has sent the replica "Access denied" already.
		return nil, nil, err
	}
	g.open()
	_ = nc.SetDeadline(time.Time{})
	bc.start()
	return c, bc, nil
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
