// Package testenv starts the real servers binarc's integration tests run
// against: a MariaDB primary (mariadbd on a throw-away datadir) and an S3
// endpoint (versitygw with its posix backend). Every server lives in the test's
// temporary directory, listens on 127.0.0.1 on a free port, and is killed in
// t.Cleanup.
//
// It is a thin testing.TB wrapper around internal/testenv, which does the
// work and returns errors (bench/ uses it directly): each function here calls
// the core and fails the test on its error. Code that must not fail the test
// from its own goroutine can call the core's methods through the embedded
// value (m.MariaDB.Exec(ctx, ...)).
//
// Missing binaries fail the test rather than skip it: a skipped integration
// test reads as a pass. scripts/deps.sh (make deps) installs everything.
package testenv

import (
	"context"
	"path/filepath"
	"testing"

	core "github.com/binarc/binarc/internal/testenv"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now
// and that this process has not handed out before. Another process may still
// take it before the caller binds it; the server starters retry on that.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := core.FreePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}

// BinaryPath returns the path of the first of names found on $PATH or in
// /usr/sbin or /usr/bin (mariadbd lives in /usr/sbin, which is not on every
// user's $PATH). Names are tried in order, so list the preferred one first:
// BinaryPath("mariadbd", "mysqld").
func BinaryPath(names ...string) (string, error) {
	return core.BinaryPath(names...)
}

// S3Server is a versitygw started by StartS3: an S3 endpoint over its posix
// backend, with one root account and a bucket created for the test.
type S3Server struct {
	*core.S3Server
	t testing.TB
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
	s, err := core.LaunchS3(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &S3Server{S3Server: s, t: t}
}

// NewBucket creates an empty bucket with a random name and returns the name.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name, err := s.S3Server.NewBucket(context.Background())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return name
}

// Stop takes the server down (an outage, for the store's point of view); its
// data stays. Like Start, it fails the test StartS3 was given, so call it from
// that test's goroutine.
func (s *S3Server) Stop() {
	s.t.Helper()
	if err := s.S3Server.Stop(); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

// Start brings a stopped server back on the same port with the same data and
// credentials, and waits until it answers.
func (s *S3Server) Start() {
	s.t.Helper()
	if err := s.S3Server.Start(context.Background()); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

// tempDataDir is where a server started for t keeps its datadir: removed
// with t.TempDir, after the server's cleanup (registered later) killed it.
func tempDataDir(t testing.TB) string {
	return filepath.Join(t.TempDir(), "data")
}
