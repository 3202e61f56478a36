package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/binarc/binarc/replication"
)

// ReplayTools are the server's own client programs that replay binlog.
type ReplayTools struct {
	Binlog string // mariadb-binlog or mysqlbinlog
	Client string // mariadb or mysql
	// Sandbox runs them: they read bucket content.
	Sandbox *Sandbox
}

// FindReplayTools looks for the client programs on PATH (MariaDB names
// first, then MySQL's).
func FindReplayTools() (ReplayTools, error) {
	var t ReplayTools
	for _, n := range []string{"mariadb-binlog", "mysqlbinlog"} {
		if p, err := exec.LookPath(n); err == nil {
			t.Binlog = p
			break
		}
	}
	for _, n := range []string{"mariadb", "mysql"} {
		if p, err := exec.LookPath(n); err == nil {
			t.Client = p
			break
		}
	}
	if t.Binlog == "" || t.Client == "" {
		return t, errors.New("mariadb-binlog and mariadb (or mysqlbinlog and mysql) not found on PATH: install the Debian package mariadb-client (or mysql-client)")
	}
	return t, nil
}

// ReplayClient says how to reach the server to replay into: a unix socket,
// or a host and port.
type ReplayClient struct {
	Socket   string
	Host     string
	Port     uint16
	User     string
	Password string
	// Preamble is SQL sent first in the session.
	Preamble string
	// TLS is how the client connects over TCP (--target-tls).
	TLS replication.TLSOptions
	// NetnsOf, when not 0, is the pid of a jailed server (a restore's or
	// a drill's temporary server, in its own network namespace): the
	// private serve it replicates from listens on that namespace's
	// loopback.
	NetnsOf int
	// listen opens the listener of the private serve the server
	// replicates from: nil for loopback in binarc's own network
	// namespace; in the jailed server's otherwise (jail_net.go).
	listen func() (net.Listener, error)
}

// Replay applies the plan's ranges to the server in one client session:
// each run of contiguous ranges is decoded by one mariadb-binlog (start and
// stop positions on its first and last file), and their output is fed, in
// order, to one mariadb client. progress, if set, hears the bytes applied.
func Replay(ctx context.Context, p *Plan, c ReplayClient, tools ReplayTools, progress func(done, total uint64)) error {
	if len(p.Ranges) == 0 {
		return nil
	}
	cs, err := newClientSession(ctx, c, tools, p)
	if err != nil {
		return err
	}
	defer cs.close()
	client := cs.client
	var clientErr bytes.Buffer
	client.Stderr = &clientErr
	client.Stdout = io.Discard
	// An OS pipe, not StdinPipe: each mariadb-binlog then writes straight
	// into the client, with no copy through this process.
	pr, stdin, err := os.Pipe()
	if err != nil {
		return err
	}
	client.Stdin = pr
	if err := client.Start(); err != nil {
		pr.Close()
		stdin.Close()
		return fmt.Errorf("start %s: %w", tools.Client, err)
	}
	pr.Close() // the client has its own copy
	var done uint64
	var runErr error
	if c.Preamble != "" {
		if _, err := io.WriteString(stdin, c.Preamble+"\n"); err != nil {
			runErr = fmt.Errorf("send preamble to %s: %w", tools.Client, err)
		}
	}
	for _, g := range groupRanges(p) {
		if runErr != nil {
			break
		}
		args := []string{"--no-defaults", "--local-load=" + cs.loadDir}
		first, last := g[0], g[len(g)-1]
		if first.Start > 4 {
			args = append(args, "--start-position="+strconv.FormatUint(first.Start, 10))
		}
		args = append(args, "--stop-position="+strconv.FormatUint(last.Stop, 10))
		for _, r := range g {
			args = append(args, r.Path)
		}
		var binlogErr bytes.Buffer
		cmd := tools.Sandbox.Command(ctx, Paths{Writable: []string{cs.loadDir}, Read: cs.binlogs}, tools.Binlog, args...)
		cmd.Stdout, cmd.Stderr = stdin, &binlogErr
		if err := cmd.Run(); err != nil {
			runErr = fmt.Errorf("%s %s: %w: %s", tools.Binlog, strings.Join(args, " "), err, strings.TrimSpace(binlogErr.String()))
			break
		}
		for _, r := range g {
			done += r.Stop - r.Start
		}
		if progress != nil {
			progress(done, p.ReplayBytes)
		}
	}
	stdin.Close()
	werr := client.Wait()
	// A client that failed (it could not connect, a statement failed)
	// breaks mariadb-binlog's pipe: the client's error is the cause.
	if runErr != nil && (werr == nil || !strings.Contains(runErr.Error(), "broken pipe")) {
		return runErr
	}
	if werr != nil {
		return fmt.Errorf("replay into the server failed (%v): %s", werr, strings.TrimSpace(lastLines(clientErr.String(), 5)))
	}
	return nil
}

// groupRanges splits the ranges into runs one mariadb-binlog can decode:
// a range that runs to its file's end followed by one that starts the next
// file.
func groupRanges(p *Plan) [][]ReplayRange {
	size := map[[2]string]uint64{}
	for _, f := range p.Files {
		size[[2]string{f.Timeline, f.File}] = f.Size
	}
	var groups [][]ReplayRange
	for i, r := range p.Ranges {
		if i > 0 {
			prev := p.Ranges[i-1]
			if prev.Timeline == r.Timeline && prev.File != r.File && prev.Stop == size[[2]string{prev.Timeline, prev.File}] && r.Start <= 4 {
				groups[len(groups)-1] = append(groups[len(groups)-1], r)
				continue
			}
		}
		groups = append(groups, []ReplayRange{r})
	}
	return groups
}

// writeClientDefaults puts the connection and password in a 0600 option
// file, so the password is never on a command line.
func writeClientDefaults(c ReplayClient) (string, error) {
	var b strings.Builder
	b.WriteString("[client]\n")
	fmt.Fprintf(&b, "user=%s\n", optionValue(c.User))
	if c.Password != "" {
		fmt.Fprintf(&b, "password=%s\n", optionValue(c.Password))
	}
	if c.Socket != "" {
		fmt.Fprintf(&b, "socket=%s\n", optionValue(c.Socket))
	} else {
		fmt.Fprintf(&b, "host=%s\nport=%d\nprotocol=tcp\n", optionValue(c.Host), c.Port)
		b.WriteString(c.TLS.OptionFileLines())
	}
	return writeTempFile("", "binarc-client-*.cnf", func(w io.Writer) error {
		_, err := io.WriteString(w, b.String())
		return err
	})
}

// writeTempFile creates a private (0600) file in dir named by pattern,
// fills it with write and returns its name; on any failure the file is
// removed.
func writeTempFile(dir, pattern string, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// optionValue quotes a value for a MySQL option file.
func optionValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// lastLines is the last n lines of s that hold more than blanks (the
// client echoes a failed statement, which may end in padding).
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " \t"))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LoadSQL feeds a SQL script (a logical snapshot) to the server through
// the client program, stopping at the first error.
func LoadSQL(ctx context.Context, sql io.Reader, c ReplayClient, tools ReplayTools) error {
	cs, err := newClientSession(ctx, c, tools, nil)
	if err != nil {
		return err
	}
	defer cs.close()
	client := cs.client
	var stderr bytes.Buffer
	if c.Preamble != "" {
		sql = io.MultiReader(strings.NewReader(c.Preamble+"\n"), sql)
	}
	client.Stdin, client.Stdout, client.Stderr = sql, io.Discard, &stderr
	if err := client.Run(); err != nil {
		return fmt.Errorf("load the dump into the server failed (%v): %s", err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	return nil
}
