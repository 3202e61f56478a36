package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/binarc/binarc/internal/testenv"
	"github.com/go-mysql-org/go-mysql/client"
)

// The bench starts its servers with internal/testenv, the core the
// integration tests use, with InnoDB sized for its working set.

// mariaDBOptions are the InnoDB settings of every server the bench starts:
// the buffer pool holds the bench's working set, and a larger redo log
// keeps checkpoints out of the measurements.
func mariaDBOptions(opts testenv.MariaDBOptions) testenv.MariaDBOptions {
	opts.BufferPoolSize = 256 * mebi
	opts.RedoLogSize = 256 * mebi
	return opts
}

// startMariaDB initialises a datadir under dir and starts mariadbd on it: a
// ROW-format binlogging primary with server_id 1, rotating at
// maxBinlogSize. cl kills it at the end of the run.
func startMariaDB(ctx context.Context, dir string, maxBinlogSize int64, cl *cleanups) (*testenv.MariaDB, error) {
	m, err := testenv.LaunchMariaDB(ctx, filepath.Join(dir, "mariadb"), mariaDBOptions(testenv.MariaDBOptions{MaxBinlogSize: maxBinlogSize}))
	if err != nil {
		return nil, err
	}
	cl.add(func() { m.Close() })
	return m, nil
}

// startS3 starts versitygw with its data under dir and a bucket. cl kills
// it at the end of the run.
func startS3(ctx context.Context, dir string, cl *cleanups) (*testenv.S3Server, error) {
	s, err := testenv.LaunchS3(ctx, dir)
	if err != nil {
		return nil, err
	}
	cl.add(func() { s.Close() })
	return s, nil
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
