package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
)

// The jail: every program a restore runs on bucket content (the temporary
// mariadbd, mbstream, mariabackup, mariadb-binlog, the mariadb client)
// starts in a mount namespace of its own, set up by binarc itself: binarc
// starts `binarc __jail` with CLONE_NEWNS and the program, its arguments
// and the jail's paths in BINARC_JAIL (so no process shows the program's
// command line while it is still root); that process,
// still root but alone in its namespace, makes every mount of the host
// read-only except the restore's own directories, hides the directories
// that hold other people's data (a production server's datadir, /root,
// /home, logs) under empty read-only tmpfs, drops to the sandbox user,
// sets no_new_privs and execs the program. The mounts vanish with the
// program; the host never sees them. docs/ARCHITECTURE.md says why this
// mechanism and not bubblewrap or Landlock.

// JailCommand is the internal subcommand that sets up a jail and execs the
// program in it: main dispatches it to RunJail before parsing flags.
const JailCommand = "__jail"

// jailEnv holds the jailSpec, as JSON, for `binarc __jail`.
const jailEnv = "BINARC_JAIL"

// jailHidden are the directories a jail hides (when they exist and hold
// nothing the program needs): other servers' data, home directories and
// logs, which the sandbox user may be able to read on the host.
var jailHidden = []string{"/root", "/home", "/var/lib/mysql", "/var/log", "/run/mysqld", "/srv"}

// jailSpec is what a jail allows and what it runs, passed to
// `binarc __jail` as JSON.
type jailSpec struct {
	// Argv is the program and its arguments.
	Argv     []string
	UID, GID uint32
	// Writable are the directories the program may change.
	Writable []string
	// Needed are paths the program reads: a hidden directory holding one
	// stays (read-only).
	Needed []string
	// HostNetwork keeps the host's network; otherwise the program gets a
	// namespace with only a loopback (jail_net.go).
	HostNetwork bool `json:",omitempty"`
	// Probe sets the jail up and exits 0 without running anything.
	Probe bool `json:",omitempty"`
}

// ErrNoJail means the restore cannot confine the programs it runs.
var ErrNoJail = errors.New("no jail for the restore's programs")

// jailCommand wraps name and args in `binarc __jail`, started in a new
// mount namespace.
func (s *Sandbox) jailCommand(ctx context.Context, spec jailSpec, name string, args ...string) *exec.Cmd {
	spec.UID, spec.GID = s.UID, s.GID
	var needed []string
	for _, p := range append(spec.Needed, name) {
		if p != "" {
			needed = append(needed, p)
		}
	}
	spec.Needed = needed
	spec.Argv = append([]string{name}, args...)
	b, _ := json.Marshal(spec) // strings and numbers only: cannot fail
	cmd := exec.CommandContext(ctx, s.exe, JailCommand)
	cmd.Env = append(CleanEnv(), jailEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Cloneflags: syscall.CLONE_NEWNS}
	if !spec.HostNetwork {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNET
	}
	return cmd
}

// probeJail sets up an empty jail once, to learn before anything is
// fetched whether this host allows one.
func (s *Sandbox) probeJail() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: binarc builds it with a mount namespace, which needs root; run binarc restore as root (the programs still run as the %s user), or give --no-jail to run them unconfined", ErrNoJail, SandboxUser)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%w: find binarc's own executable: %v; give --no-jail to run the programs unconfined", ErrNoJail, err)
	}
	s.exe = exe
	cmd := s.jailCommand(context.Background(), jailSpec{Probe: true}, "/bin/true")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: setting up a mount namespace failed (%v: %s): binarc needs CAP_SYS_ADMIN and a kernel with mount namespaces (in a container: --cap-add SYS_ADMIN, or run the restore on the host); or give --no-jail to run the programs unconfined",
			ErrNoJail, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RunJail is `binarc __jail`: it confines this process (alone in its
// mount namespace) as the spec in BINARC_JAIL says and execs its program,
// without that variable. It returns only on failure, with the exit status
// to use; the message goes to stderr, which binarc reads as the
// program's.
func RunJail() int {
	runtime.LockOSThread() // no_new_privs and the exec on one thread
	log := zerolog.New(os.Stderr).With().Str("component", "jail").Logger()
	var spec jailSpec
	if err := json.Unmarshal([]byte(os.Getenv(jailEnv)), &spec); err != nil || (len(spec.Argv) == 0 && !spec.Probe) {
		log.Error().Err(err).Msgf("binarc __jail is an internal subcommand, run by binarc restore: bad %s", jailEnv)
		return 2
	}
	os.Unsetenv(jailEnv)
	if err := enterJail(spec); err != nil {
		log.Error().Err(err).Msg("cannot set up the jail")
		return 126
	}
	if spec.Probe {
		return 0
	}
	err := syscall.Exec(spec.Argv[0], spec.Argv, os.Environ())
	log.Error().Err(err).Str("program", spec.Argv[0]).Msg("exec in the jail")
	return 127
}

// under tells whether p is dir or inside it.
func under(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}
