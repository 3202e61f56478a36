package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/binarc/binarc/archive/objstore"
)

// versitygwVersion is the S3 server binarc is tested against; scripts/deps.sh
// builds the same version.
const versitygwVersion = "v1.8.0"

const (
	s3Region        = "us-east-1"
	s3HealthPath    = "/health"
	s3StartTimeout  = 30 * time.Second
	s3ServerLogName = "versitygw.log"
)

// S3Server is a versitygw started by LaunchS3: an S3 endpoint over its posix
// backend, with one root account and a bucket.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT, for path-style requests
	Bucket    string // created by LaunchS3, empty
	AccessKey string
	SecretKey string
	Region    string

	bin     string
	port    int
	dataDir string
	logPath string

	running
}

// LaunchS3 starts versitygw on a free 127.0.0.1 port with its data and log
// under dir (which must exist) and random root credentials, waits until it
// answers, and creates a fresh bucket. Close kills it.
//
// The binary is $BINARC_VERSITYGW, else CacheDir()/bin/versitygw-v1.8.0
// (what scripts/deps.sh installs).
func LaunchS3(ctx context.Context, dir string) (*S3Server, error) {
	bin, err := VersitygwPath()
	if err != nil {
		return nil, err
	}
	s := &S3Server{
		AccessKey: "binarc" + RandomHex(6),
		SecretKey: RandomHex(20),
		Region:    s3Region,
		bin:       bin,
		dataDir:   filepath.Join(dir, "posix"),
		logPath:   filepath.Join(dir, s3ServerLogName),
	}
	if err := os.Mkdir(s.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("versitygw data directory: %w", err)
	}
	err = onFreePort(func(port int) error {
		s.port = port
		s.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return s.Start(ctx)
	}, func() bool {
		return strings.Contains(TailFile(s.logPath, 20), "address already in use")
	})
	if err != nil {
		return nil, err
	}
	if s.Bucket, err = s.NewBucket(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// VersitygwPath finds the versitygw binary: $BINARC_VERSITYGW, else
// versitygw-v1.8.0 in the bin directory of CacheDir.
func VersitygwPath() (string, error) {
	if p := os.Getenv("BINARC_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("versitygw not found: $BINARC_VERSITYGW: %w", err)
		}
		return p, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("versitygw not found: %w", err)
	}
	p := filepath.Join(cache, "bin", "versitygw-"+versitygwVersion)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found at %s: run scripts/deps.sh (make deps), or set $BINARC_VERSITYGW", p)
	}
	return p, nil
}

// Credentials are the server's static root credentials.
func (s *S3Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Client returns an S3 client for the server: static root credentials,
// path-style addressing, the SDK's default retryer.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.Credentials(),
	})
}

// NewBucket creates an empty bucket with a random name and returns the name.
func (s *S3Server) NewBucket(ctx context.Context) (string, error) {
	name := "binarc-test-" + RandomHex(8)
	ctx, cancel := context.WithTimeout(ctx, s3StartTimeout)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return "", fmt.Errorf("s3: create bucket %s at %s: %w", name, s.Endpoint, err)
	}
	return name, nil
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
// data stays. A server that ignores SIGTERM for 5 s is killed.
func (s *S3Server) Stop() error {
	err := s.stop(syscall.SIGTERM, 5*time.Second)
	if errors.Is(err, errNotRunning) {
		return fmt.Errorf("stop versitygw at %s: %w", s.Endpoint, err)
	}
	if err != nil {
		s.kill()
	}
	return nil
}

// Close kills the server if it runs. Its data stays, for the caller to
// remove with the directory given to LaunchS3.
func (s *S3Server) Close() error {
	s.kill()
	return nil
}

// Start brings a stopped server back on the same port with the same data and
// credentials, and waits until it answers.
func (s *S3Server) Start(ctx context.Context) error {
	if s.Pid() != 0 {
		return fmt.Errorf("start versitygw at %s: %w", s.Endpoint, errAlreadyRunning)
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
	hc := &http.Client{Timeout: time.Second}
	err = s.start(ctx, "versitygw", cmd, s3StartTimeout, func() error {
		resp, err := hc.Get(s.Endpoint + s3HealthPath)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", s3HealthPath, resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("versitygw at %s: %w\n%s:\n%s", s.Endpoint, err, s.logPath, TailFile(s.logPath, 30))
	}
	return nil
}

// versitygwEnv is this process's environment without the variables
// versitygw reads its configuration from (VGW_*, ROOT_*, and the two bare
// ones), so a developer's shell cannot change the server the flags describe.
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

// OpenStore opens a store URL of this server ("s3://BUCKET/PREFIX") with
// its credentials given directly, not through the environment, so tests
// that each run their own server can run in parallel. Other URLs are
// opened as binarc opens them.
func (s *S3Server) OpenStore(ctx context.Context, storeURL string) (objstore.Store, error) {
	rest, ok := strings.CutPrefix(storeURL, "s3://")
	if !ok {
		return objstore.Open(ctx, storeURL)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	st, err := objstore.NewS3(ctx, objstore.S3Config{Bucket: bucket, Prefix: strings.Trim(prefix, "/"),
		Endpoint: s.Endpoint, Region: s.Region, PathStyle: true, Credentials: s.Credentials()})
	if err != nil {
		return nil, err
	}
	if err := st.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return st, nil
}
