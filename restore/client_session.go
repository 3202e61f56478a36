package restore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/binarc/binarc/replication"
)

// clientSession is one mariadb client replaying into a server, confined:
// it runs as the sandbox user in the jail and reads only what binarc gives
// it (its option file, and the files of the binlog's own LOAD DATA).
type clientSession struct {
	client   *exec.Cmd
	defaults string   // the option file: user, password, socket or host
	tlsDir   string   // copies of the TLS files, readable by the sandbox user
	loadDir  string   // mariadb-binlog --local-load: a LOAD DATA's files
	binlogs  []string // the plan's binlog files
}

// newClientSession prepares the client for a replay of p (nil: a SQL
// dump). The client has LOAD DATA LOCAL off (--local-infile=0), so a
// statement in the archive cannot make it read a host file, unless the
// plan's binlog holds LOAD DATA events (Begin_load_query and
// Execute_load_query, written for a LOAD DATA run with binlog_format
// STATEMENT or MIXED): mariadb-binlog turns those into LOAD DATA LOCAL
// INFILE of files it writes into loadDir, which the client must read.
// Then the jail is what keeps the rest of the host from it: the other
// users' data is hidden, and the client is not root.
func newClientSession(ctx context.Context, c ReplayClient, tools ReplayTools, p *Plan) (cs *clientSession, err error) {
	sb := tools.Sandbox
	if sb == nil {
		return nil, errors.New("replay: no sandbox to run the client programs in")
	}
	cs = &clientSession{}
	defer func() {
		if err != nil {
			cs.close()
		}
	}()
	if c.TLS, cs.tlsDir, err = shareTLSFiles(sb, c.TLS); err != nil {
		return nil, err
	}
	if cs.defaults, err = writeClientDefaults(c); err != nil {
		return nil, err
	}
	if err := sb.ShareRead(cs.defaults); err != nil {
		return nil, fmt.Errorf("give the client's option file to the %s user: %w", sb.User, err)
	}
	localInfile := "--local-infile=0"
	if p != nil {
		if cs.loadDir, err = os.MkdirTemp("", "binarc-load-"); err != nil {
			return nil, err
		}
		if err := sb.Give(cs.loadDir); err != nil {
			return nil, err
		}
		// WorkDir/binlog/TIMELINE/FILE: the directories, then the files.
		var share []string
		for _, r := range p.Ranges {
			cs.binlogs = append(cs.binlogs, r.Path)
			share = append(share, filepath.Dir(filepath.Dir(r.Path)), filepath.Dir(r.Path), r.Path)
		}
		if err := sb.ShareRead(share...); err != nil {
			return nil, fmt.Errorf("let the %s user read the binlog files: %w", sb.User, err)
		}
		loads, err := planHasLoadData(p)
		if err != nil {
			return nil, err
		}
		if loads {
			localInfile = "--local-infile=1"
		}
	}
	// --defaults-file must come first; binary mode because row events are
	// BINLOG '…' statements; a packet as large as the biggest row event.
	// On a socket (the temporary server), no network; over TCP, the
	// host's, to reach the --target.
	paths := Paths{Read: []string{cs.defaults, cs.tlsDir, cs.loadDir}, HostNetwork: c.Socket == ""}
	cs.client = sb.Command(ctx, paths, tools.Client,
		"--defaults-file="+cs.defaults, localInfile, "--binary-mode", "--max-allowed-packet=1073741824")
	return cs, nil
}

// shareTLSFiles copies the --target-tls files (a CA, a client certificate
// and key, often root's alone) into a private directory the sandbox user
// may read, and returns the options pointing at the copies.
func shareTLSFiles(sb *Sandbox, o replication.TLSOptions) (replication.TLSOptions, string, error) {
	if !sb.Switch || (o.CA == "" && o.Cert == "" && o.Key == "") {
		return o, "", nil
	}
	dir, err := os.MkdirTemp("", "binarc-tls-")
	if err != nil {
		return o, "", err
	}
	share := []string{dir}
	for name, p := range map[string]*string{"ca.pem": &o.CA, "cert.pem": &o.Cert, "key.pem": &o.Key} {
		if *p == "" {
			continue
		}
		b, err := os.ReadFile(*p)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o600)
		}
		if err != nil {
			os.RemoveAll(dir)
			return o, "", fmt.Errorf("%s: %w", o.Flag, err)
		}
		*p = filepath.Join(dir, name)
		share = append(share, *p)
	}
	if err := sb.ShareRead(share...); err != nil {
		os.RemoveAll(dir)
		return o, "", err
	}
	return o, dir, nil
}

func (cs *clientSession) close() {
	if cs.tlsDir != "" {
		os.RemoveAll(cs.tlsDir)
	}
	if cs.defaults != "" {
		os.Remove(cs.defaults)
	}
	if cs.loadDir != "" {
		os.RemoveAll(cs.loadDir)
	}
}

// Binlog event types that carry a LOAD DATA's file (log_event.h).
const (
	loadEvent             = 6
	createFileEvent       = 8
	newLoadEvent          = 12
	beginLoadQueryEvent   = 17
	executeLoadQueryEvent = 18
)

// planHasLoadData tells whether the plan's ranges hold a LOAD DATA's
// file events, reading only the event headers.
func planHasLoadData(p *Plan) (bool, error) {
	for _, r := range p.Ranges {
		found, err := fileHasLoadData(r.Path, max(r.Start, 4), r.Stop)
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

func fileHasLoadData(path string, start, stop uint64) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	// Headers only, in one sequential read: events carry their length,
	// and a file may be gigabytes.
	r := bufio.NewReaderSize(f, 256<<10)
	if _, err := r.Discard(4); err != nil {
		return false, nil
	}
	var h [19]byte
	for off := uint64(4); off < stop; {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, fmt.Errorf("%s at %d: %w", filepath.Base(path), off, err)
		}
		size := uint64(binary.LittleEndian.Uint32(h[9:13]))
		if size < 19 {
			return false, fmt.Errorf("%s at %d: event length %d", filepath.Base(path), off, size)
		}
		switch h[4] {
		case loadEvent, createFileEvent, newLoadEvent, beginLoadQueryEvent, executeLoadQueryEvent:
			if off >= start {
				return true, nil
			}
		}
		if _, err := r.Discard(int(size - 19)); err != nil {
			return false, nil // a cut last event: mariadb-binlog reports it
		}
		off += size
	}
	return false, nil
}
