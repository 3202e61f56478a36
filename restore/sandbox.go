package restore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
)

// A restore runs programs on what it reads from the bucket: mbstream and
// mariabackup on a snapshot, mariadb-binlog on archived binlog, and a
// temporary mariadbd that executes the replayed statements. Whoever can
// write to the bucket chooses those statements (zstd and CRC32 checksums
// are no signature), so the programs are confined: they run as an
// unprivileged user, in a jail (jail.go) where only the restore's own
// directories are writable, with none of binarc's environment (no AWS
// keys, no BINARC_* passwords), and die with binarc. The temporary server also has
// an empty private --secure-file-priv directory and no LOCAL INFILE, so
// SELECT … INTO OUTFILE and LOAD DATA INFILE cannot reach the host's files.

// SandboxUser is the unprivileged user a restore run by root runs its
// programs as: the one the Debian mariadb-server package creates.
const SandboxUser = "mysql"

// Sandbox runs programs confined.
type Sandbox struct {
	// Switch is set when binarc runs as root: programs then run as
	// UID/GID.
	Switch   bool
	UID, GID uint32
	User     string
	// Jailed programs run in the jail (jail.go); exe is binarc's own
	// executable, which sets it up.
	Jailed bool
	exe    string
}

// SandboxOptions say how to confine the restore's programs.
type SandboxOptions struct {
	// NoJail runs them without the jail (--no-jail): as the sandbox
	// user still, with a warning.
	NoJail bool
	Log    zerolog.Logger
}

// NewSandbox returns the sandbox for this process: as root, the mysql
// user, which must exist, inside the jail; otherwise binarc's own,
// unprivileged, user, which cannot build a jail: the restore is refused
// unless NoJail.
func NewSandbox(o SandboxOptions) (*Sandbox, error) {
	sb, err := newSandbox(SandboxUser)
	if err != nil {
		return nil, err
	}
	if o.NoJail {
		o.Log.Warn().Str("user", sb.User).Msg("--no-jail: the programs the restore runs on bucket content (the temporary server, mbstream, mariabackup, mariadb-binlog, mariadb) can read and write whatever their user can on this host; a forged archive can use that")
		return sb, nil
	}
	if err := sb.probeJail(); err != nil {
		return nil, err
	}
	sb.Jailed = true
	return sb, nil
}

func newSandbox(userName string) (*Sandbox, error) {
	if os.Geteuid() != 0 {
		u, _ := user.Current()
		name := strconv.Itoa(os.Geteuid())
		if u != nil {
			name = u.Username
		}
		return &Sandbox{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), User: name}, nil
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("binarc restore runs as root, and there is no %q user to run the temporary server, mbstream and mariabackup as: "+
			"the restored data comes from the bucket and is not run as root; install mariadb-server (it creates the user), create one (useradd --system %s), or run binarc restore as an unprivileged user with --no-jail", userName, userName)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil, fmt.Errorf("user %q has uid %s gid %s: binarc needs an unprivileged user to run the temporary server as", userName, u.Uid, u.Gid)
	}
	return &Sandbox{Switch: true, UID: uint32(uid), GID: uint32(gid), User: userName}, nil
}

// Paths are what a confined program may write, and what it reads that a
// jail might otherwise hide.
type Paths struct {
	Writable []string
	Read     []string
	// HostNetwork keeps the host's network in the jail: for the client
	// into a --target, which may be anywhere.
	HostNetwork bool
}

// Command is exec.CommandContext for a program that reads bucket
// content: in the jail (or, with --no-jail, as the sandbox user), with a
// clean environment, killed if binarc dies. Its TMPDIR is its first
// writable directory: /tmp is read-only in the jail, and a program that
// buffers in temporary files (mariadb-binlog, for large events) must
// write them where it may.
func (s *Sandbox) Command(ctx context.Context, paths Paths, name string, args ...string) *exec.Cmd {
	cmd := s.command(ctx, paths, name, args...)
	if len(paths.Writable) > 0 {
		cmd.Env = append(cmd.Env, "TMPDIR="+paths.Writable[0])
	}
	return cmd
}

func (s *Sandbox) command(ctx context.Context, paths Paths, name string, args ...string) *exec.Cmd {
	if s.Jailed {
		return s.jailCommand(ctx, jailSpec{Writable: paths.Writable, Needed: paths.Read, HostNetwork: paths.HostNetwork}, name, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = CleanEnv()
	// The kernel sends SIGKILL when the thread that started the program
	// ends: binarc's threads live as long as binarc (it locks none to a
	// goroutine). Go sets it after switching credentials, since the
	// switch would clear it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.Switch {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.UID, Gid: s.GID, NoSetGroups: true}
	}
	return cmd
}

// Give makes the files or directories the sandbox user's: a confined
// program writes in them.
func (s *Sandbox) Give(paths ...string) error {
	if !s.Switch {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, int(s.UID), int(s.GID)); err != nil {
			return err
		}
	}
	return nil
}

// ShareRead lets the sandbox user read the files, and pass through the
// directories, and nothing more: they move to its group (files 0640,
// directories 0710) and stay binarc's, so a program running as that user
// cannot change what binarc fetched and checked.
func (s *Sandbox) ShareRead(paths ...string) error {
	if !s.Switch {
		return nil
	}
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o640)
		if st.IsDir() {
			mode = 0o710
		}
		if err := os.Lchown(p, -1, int(s.GID)); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	return nil
}

// CleanEnv is the environment of the programs binarc runs: the locale, the
// time zone and a PATH, nothing else (no AWS_*, no BINARC_*).
func CleanEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LANG" || k == "TZ" || strings.HasPrefix(k, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// Own makes dir, and everything in it, the sandbox user's.
func (s *Sandbox) Own(dir string) error {
	if !s.Switch {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(s.UID), int(s.GID))
	})
}

// CheckReachable tells whether the sandbox user can reach dir: every
// directory above it must let it through (search permission).
func (s *Sandbox) CheckReachable(dir string) error {
	if !s.Switch {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		mode := st.Mode().Perm()
		if ok {
			var bit os.FileMode = 0o001
			switch {
			case sys.Uid == s.UID:
				bit = 0o100
			case sys.Gid == s.GID:
				bit = 0o010
			}
			if mode&bit == 0 {
				return fmt.Errorf("%s: the %s user, which runs the temporary server, cannot reach it: %s is mode %04o; "+
					"choose a directory under one it can traverse, or chmod o+x %s", dir, s.User, p, mode, p)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// prepareSandbox builds the restore's sandbox and checks, before anything
// is fetched, that its user can reach the directories its programs use:
// the data directory, and the fetched binlog's for a client replay.
func prepareSandbox(req RestoreRequest) (*Sandbox, error) {
	sb, err := NewSandbox(SandboxOptions{NoJail: req.NoJail, Log: req.Log})
	if err != nil {
		return nil, err
	}
	if req.Datadir != "" {
		dir, err := filepath.Abs(req.Datadir)
		if err != nil {
			return nil, err
		}
		if err := sb.CheckReachable(dir); err != nil {
			return nil, fmt.Errorf("--datadir %w", err)
		}
	}
	if req.Server != nil || req.Replay == ReplayViaClient {
		dir, err := filepath.Abs(filepath.Join(req.WorkDir, "binlog"))
		if err != nil {
			return nil, err
		}
		if err := sb.CheckReachable(dir); err != nil {
			return nil, fmt.Errorf("--work-dir (the fetched binlog, which mariadb-binlog reads) %w", err)
		}
	}
	return sb, nil
}
