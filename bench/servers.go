package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-mysql-org/go-mysql/client"
)

// The bench cannot use integration/testenv (its API takes a testing.TB), so
// this file starts the same two servers with the flags testenv found to
// work, minus its datadir template cache.

const (
	startTimeout    = 60 * time.Second
	versitygwRegion = "us-east-1"
	// versitygwVersion matches testenv and scripts/deps.sh.
	versitygwVersion = "v1.8.0"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on right
// now. Another process may take it first; the starters retry on that.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// mariaDB is a mariadbd on a fresh datadir, listening on 127.0.0.1.
type mariaDB struct {
	Port    int
	DataDir string
	Version string
	proc    *child
}

func (m *mariaDB) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)) }

func (m *mariaDB) errorLog() string { return filepath.Join(m.DataDir, "error.log") }

// mariaDBInnoDBArgs are shared by mariadb-install-db and mariadbd, so the
// first start does not resize the redo log. The buffer pool holds the
// bench's working set; doublewrite only protects against an OS crash.
var mariaDBInnoDBArgs = []string{
	"--innodb-buffer-pool-size=256M",
	"--innodb-log-file-size=256M",
	"--innodb-doublewrite=0",
}

// startMariaDB initialises a datadir under dir and starts mariadbd on it: a
// ROW-format binlogging primary rotating at maxBinlogSize.
func startMariaDB(ctx context.Context, dir string, maxBinlogSize int64, cl *cleanups) (*mariaDB, error) {
	mariadbd, err := binaryPath("mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	installDB, err := binaryPath("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, err
	}
	m := &mariaDB{DataDir: filepath.Join(dir, "mariadb")}
	// --cross-bootstrap leaves out root@<hostname> (which a
	// --skip-name-resolve server warns about) and skips resolving it.
	args := append([]string{"--no-defaults", "--datadir=" + m.DataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--cross-bootstrap"}, mariaDBInnoDBArgs...)
	if out, err := exec.CommandContext(ctx, installDB, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", installDB, strings.Join(args, " "), err, out)
	}
	for attempt := 1; ; attempt++ {
		if m.Port, err = freePort(); err != nil {
			return nil, err
		}
		err = m.start(ctx, mariadbd, dir, maxBinlogSize, cl)
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(tailFile(m.errorLog(), 20), "Address already in use") {
			os.Remove(m.errorLog())
			continue
		}
		return nil, err
	}
	conn, err := m.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer quit(conn)
	// MariaDB prefixes its version with 5.5.5- for old MySQL clients.
	m.Version = strings.TrimPrefix(conn.GetServerVersion(), "5.5.5-")
	return m, nil
}

func (m *mariaDB) start(ctx context.Context, mariadbd, dir string, maxBinlogSize int64, cl *cleanups) error {
	args := []string{
		"--no-defaults", // must come first
		"--datadir=" + m.DataDir,
		"--socket=" + filepath.Join(dir, "mariadbd.sock"),
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--server-id=1",
		"--pid-file=" + filepath.Join(m.DataDir, "mariadbd.pid"),
		"--log-error=" + m.errorLog(),
		"--max-allowed-packet=1G",
		"--skip-name-resolve",
		"--log-bin=" + filepath.Join(m.DataDir, "mysql-bin"),
		"--binlog-format=ROW",
		"--max-binlog-size=" + strconv.FormatInt(maxBinlogSize, 10),
		// The binlog is still write()n at every commit; only an OS crash
		// could lose it. innodb_flush_log_at_trx_commit keeps its default.
		"--sync-binlog=0",
		"--innodb-buffer-pool-dump-at-shutdown=0",
		"--innodb-buffer-pool-load-at-startup=0",
	}
	args = append(args, mariaDBInnoDBArgs...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // mariadbd refuses root otherwise
	}
	return m.launch(ctx, mariadbd, args, cl)
}

// dial opens a root connection over TCP (root has no password: see
// --auth-root-authentication-method=normal).
// launch starts mariadbd with args and waits until it accepts connections;
// cl stops it at the end of the run.
func (m *mariaDB) launch(ctx context.Context, mariadbd string, args []string, cl *cleanups) error {
	proc, err := startChild("mariadbd", exec.Command(mariadbd, args...))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := m.dial(ctx)
		if err == nil {
			quit(conn)
			m.proc = proc
			cl.add(proc.kill)
			return nil
		}
		if proc.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			proc.kill()
			return fmt.Errorf("mariadbd on port %d did not start: %v\nerror.log:\n%s", m.Port, err, tailFile(m.errorLog(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mariaDB) dial(ctx context.Context) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return client.ConnectWithContext(ctx, m.Addr(), "root", "", "", 5*time.Second)
}

// exec runs statements as root, in order, on one connection.
func (m *mariaDB) exec(ctx context.Context, stmts ...string) error {
	conn, err := m.dial(ctx)
	if err != nil {
		return fmt.Errorf("connect to mariadbd at %s: %w", m.Addr(), err)
	}
	defer quit(conn)
	for _, s := range stmts {
		r, err := conn.Execute(s)
		if err != nil {
			return fmt.Errorf("exec %.100q: %w", s, err)
		}
		r.Close()
	}
	return nil
}

// quit ends a session with COM_QUIT, so the server logs no aborted
// connection.
func quit(conn *client.Conn) {
	if conn.Quit() != nil {
		conn.Close()
	}
}

// binlogFile is one row of SHOW BINARY LOGS.
type binlogFile struct {
	Name string `json:"name"`
	Size uint64 `json:"size"`
}

func showBinaryLogs(conn *client.Conn) ([]binlogFile, error) {
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
	}
	defer r.Close()
	var files []binlogFile
	for i := range r.RowNumber() {
		name, err := r.GetString(i, 0)
		if err != nil {
			return nil, err
		}
		// A copy: the string views the result's buffer, which Close
		// returns to go-mysql's pool for the next query to overwrite.
		name = strings.Clone(name)
		size, err := r.GetUint(i, 1)
		if err != nil {
			return nil, err
		}
		files = append(files, binlogFile{Name: name, Size: size})
	}
	return files, nil
}

func totalSize(files []binlogFile) uint64 {
	var n uint64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// s3Server is a versitygw over its posix backend, with one bucket.
type s3Server struct {
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	proc      *child
}

func versitygwPath() (string, error) {
	if p := os.Getenv("BINARC_VERSITYGW"); p != "" {
		return p, nil
	}
	cache := os.Getenv("BINARC_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "binarc")
	}
	p := filepath.Join(cache, "bin", "versitygw-"+versitygwVersion)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found at %s: run scripts/deps.sh (make deps) or set BINARC_VERSITYGW", p)
	}
	return p, nil
}

// startS3 starts versitygw with its data under dir and creates a bucket.
func startS3(ctx context.Context, dir string, cl *cleanups) (*s3Server, error) {
	bin, err := versitygwPath()
	if err != nil {
		return nil, err
	}
	s := &s3Server{AccessKey: "bench" + randomHex(6), SecretKey: randomHex(20), Bucket: "binarc-bench"}
	data := filepath.Join(dir, "s3")
	logPath := filepath.Join(dir, "versitygw.log")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = s.start(ctx, bin, port, data, logPath)
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(tailFile(logPath, 20), "address already in use") {
			continue
		}
		return nil, err
	}
	cl.add(s.proc.kill)
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if _, err := s.client().CreateBucket(cctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		return nil, fmt.Errorf("s3: create bucket %s at %s: %w", s.Bucket, s.Endpoint, err)
	}
	return s, nil
}

func (s *s3Server) start(ctx context.Context, bin string, port int, data, logPath string) error {
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin,
		"--port", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", versitygwRegion, "--health", "/health", "--quiet",
		"posix", data)
	// versitygw reads configuration from VGW_*, ROOT_*, LOGFILE and
	// WEBHOOK; keep a developer's shell from changing the server.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "VGW_") && !strings.HasPrefix(name, "ROOT_") && name != "LOGFILE" && name != "WEBHOOK" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	proc, err := startChild("versitygw", cmd)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := hc.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.proc = proc
				return nil
			}
			err = fmt.Errorf("GET /health: %s", resp.Status)
		}
		if proc.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			proc.kill()
			return fmt.Errorf("versitygw at %s did not start: %v\n%s", s.Endpoint, err, tailFile(logPath, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *s3Server) credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

func (s *s3Server) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       versitygwRegion,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.credentials(),
	})
}

// env is what a binarc process needs to reach the server.
func (s *s3Server) env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + versitygwRegion,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"BINARC_S3_PATH_STYLE=true",
	}
}
