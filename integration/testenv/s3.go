package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// versitygwVersion is the S3 server the tests run against; scripts/deps.sh
// builds the same version.
const versitygwVersion = "v1.8.0"

const (
	s3Region        = "us-east-1"
	s3HealthPath    = "/health"
	s3StartTimeout  = 30 * time.Second
	s3ServerLogName = "versitygw.log"
)

// S3Server is a versitygw started by StartS3: an S3 endpoint over its posix
// backend, with one root account and a bucket created for the test.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT, for path-style requests
	Bucket    string // created by StartS3, empty
	AccessKey string
	SecretKey string
	Region    string

	t       testing.TB
	bin     string
	port    int
	dataDir string
	logPath string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartS3 starts versitygw on a free 127.0.0.1 port with its data under
// t.TempDir() and random root credentials, waits until it answers, and
// creates a fresh bucket. The server is killed in t.Cleanup.
//
// The binary is $BINARC_VERSITYGW, else
// ${BINARC_CACHE:-$HOME/.cache/binarc}/bin/versitygw-v1.8.0 (what
// scripts/deps.sh installs).
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := versitygwPath()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	s := &S3Server{
		AccessKey: "binarc" + randomHex(6),
		SecretKey: randomHex(20),
		Region:    s3Region,
		t:         t,
		bin:       bin,
		dataDir:   filepath.Join(tmp, "posix"),
		logPath:   filepath.Join(tmp, s3ServerLogName),
	}
	if err := os.Mkdir(s.dataDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.proc != nil {
			s.proc.kill()
			s.proc = nil
		}
	})

	// FreePort cannot reserve a port against other processes (parallel test
	// binaries), so a lost race is retried with another port.
	for attempt := 1; ; attempt++ {
		s.port = FreePort(t)
		s.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		err := s.start()
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(tailFile(s.logPath, 20), "address already in use") {
			continue
		}
		t.Fatalf("testenv: %v", err)
	}
	s.Bucket = s.NewBucket(t)
	return s
}

// versitygwPath finds the versitygw binary; see StartS3.
func versitygwPath() (string, error) {
	if p := os.Getenv("BINARC_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("versitygw not found: $BINARC_VERSITYGW: %w", err)
		}
		return p, nil
	}
	cache, err := cacheDir()
	if err != nil {
		return "", fmt.Errorf("versitygw not found: run scripts/deps.sh (make deps): %w", err)
	}
	candidates := []string{
		filepath.Join(cache, "bin", "versitygw-"+versitygwVersion),
		// Where the first build on the development machine put it.
		"/root/.cache/binarc/bin/versitygw-" + versitygwVersion + ".d/versitygw",
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found: run scripts/deps.sh (make deps); looked for %s",
		strings.Join(candidates, ", "))
}

// Client returns an S3 client for the server: static root credentials,
// path-style addressing, the SDK's default retryer.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// NewBucket creates an empty bucket with a random name and returns the name.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "binarc-test-" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), s3StartTimeout)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: s3: create bucket %s at %s: %v", name, s.Endpoint, err)
	}
	return name
}

// Env is the environment a binarc process needs to reach this server.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"BINARC_S3_PATH_STYLE=true",
	}
}

// DataDir is the directory versitygw keeps its buckets in (its posix
// backend): every byte the server stores is in a file below it.
func (s *S3Server) DataDir() string { return s.dataDir }

// StoreURL is the s3:// URL of prefix in the server's bucket.
func (s *S3Server) StoreURL(prefix string) string {
	return "s3://" + s.Bucket + "/" + strings.TrimPrefix(prefix, "/")
}

// Stop takes the server down (an outage, for the store's point of view); its
// data stays. Like Start, it fails the test StartS3 was given, so call it from
// that test's goroutine.
func (s *S3Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatal("testenv: S3Server.Stop: server is not running")
	}
	if err := s.proc.stop(syscall.SIGTERM, 5*time.Second); err != nil {
		s.proc.kill()
	}
	s.proc = nil
}

// Start brings a stopped server back on the same port with the same data and
// credentials, and waits until it answers.
func (s *S3Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

func (s *S3Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("start versitygw on %s: already running", s.Endpoint)
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("versitygw log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(s.bin,
		"--port", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--health", s3HealthPath,
		"--quiet",
		"posix", s.dataDir)
	cmd.Env = versitygwEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	proc, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	if err := s.waitReady(proc); err != nil {
		proc.kill()
		return fmt.Errorf("versitygw at %s: %w\n%s:\n%s", s.Endpoint, err, s.logPath, tailFile(s.logPath, 30))
	}
	s.proc = proc
	return nil
}

// waitReady polls the health endpoint until it answers 200, the process
// exits, or s3StartTimeout passes.
func (s *S3Server) waitReady(proc *process) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(s3StartTimeout)
	for {
		resp, err := hc.Get(s.Endpoint + s3HealthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", s3HealthPath, resp.Status)
		}
		if proc.exited() {
			return fmt.Errorf("exited during start-up: %v", proc.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %v", s3StartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// versitygwEnv is the test's environment without the variables versitygw
// reads its configuration from (VGW_*, ROOT_*, and the two bare ones), so a
// developer's shell cannot change the server the flags describe.
func versitygwEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "VGW_") || strings.HasPrefix(name, "ROOT_") ||
			name == "LOGFILE" || name == "WEBHOOK" {
			continue
		}
		env = append(env, kv)
	}
	return env
}
