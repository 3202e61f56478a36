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
)

// A restore runs programs on what it reads from the bucket: mbstream and
// mariabackup on a snapshot, mariadb-binlog on archived binlog, and a
// temporary mariadbd that executes the replayed statements. Whoever can
// write to the bucket chooses those statements (zstd and CRC32 checksums
// are no signature), so the programs are confined: they run as an
// unprivileged user, with none of binarc's environment (no AWS keys, no
// BINARC_* passwords), and die with binarc. The temporary server also has
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
}

// NewSandbox returns the sandbox for this process: as root, the mysql
// user, which must exist; otherwise binarc's own, unprivileged, user.
func NewSandbox() (*Sandbox, error) {
	return newSandbox(SandboxUser)
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
			"the restored data comes from the bucket and is not run as root; install mariadb-server (it creates the user), create one (useradd --system %s), or run binarc restore as an unprivileged user", userName, userName)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil, fmt.Errorf("user %q has uid %s gid %s: binarc needs an unprivileged user to run the temporary server as", userName, u.Uid, u.Gid)
	}
	return &Sandbox{Switch: true, UID: uint32(uid), GID: uint32(gid), User: userName}, nil
}

// Command is exec.CommandContext for a program that reads bucket
// content: as the sandbox user, with a clean environment, killed if
// binarc dies.
func (s *Sandbox) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	s.confine(cmd)
	if s.Switch {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: s.UID, Gid: s.GID, NoSetGroups: true}
	}
	return cmd
}

// confine gives cmd a clean environment and the parent-death signal,
// without changing its user: for the clients, which read files binarc
// wrote for them.
func (s *Sandbox) confine(cmd *exec.Cmd) {
	cmd.Env = CleanEnv()
	// The kernel sends SIGKILL when the thread that started the program
	// ends: binarc's threads live as long as binarc (it locks none to a
	// goroutine). Go sets it after switching credentials, since the
	// switch would clear it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// ClientCommand is exec.CommandContext for a client program (mariadb,
// mariadb-binlog): binarc's user, a clean environment, killed with binarc.
func ClientCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	(&Sandbox{}).confine(cmd)
	return cmd
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
