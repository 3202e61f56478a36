package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/binarc/binarc/internal/progs"
	"github.com/binarc/binarc/replication"
)

// tool is a backup program found on this host.
type tool struct {
	Name    string // as the manifest records it: mariabackup, mariadb-dump, ...
	Path    string
	Version string // its --version line
}

// toolCandidate is a program binarc can use, the environment variable that
// may point at it instead of $PATH, and the Debian package that has it.
type toolCandidate struct {
	names   []string
	env     string
	pkg     string
	purpose string
}

func toolFor(flavor replication.Flavor, method Method) toolCandidate {
	switch {
	case method == Physical && flavor == replication.FlavorMariaDB:
		return toolCandidate{names: []string{"mariabackup", "mariadb-backup"}, env: "BINARC_MARIABACKUP", pkg: "mariadb-backup",
			purpose: "physical snapshots of MariaDB"}
	case method == Physical:
		return toolCandidate{names: []string{"xtrabackup"}, env: "BINARC_XTRABACKUP", pkg: "percona-xtrabackup-80 (from Percona's repository)",
			purpose: "physical snapshots of MySQL"}
	case flavor == replication.FlavorMariaDB:
		return toolCandidate{names: []string{"mariadb-dump", "mysqldump"}, env: "BINARC_MARIADB_DUMP", pkg: "mariadb-client",
			purpose: "logical snapshots of MariaDB"}
	default:
		return toolCandidate{names: []string{"mysqldump"}, env: "BINARC_MYSQLDUMP", pkg: "default-mysql-client (or mysql-client)",
			purpose: "logical snapshots of MySQL"}
	}
}

// ToolMissingError says which program is missing and which package has it.
type ToolMissingError struct {
	Names   []string
	Package string
	Purpose string
}

func (e *ToolMissingError) Error() string {
	return fmt.Sprintf("%s not found on $PATH: it is needed for %s: install the Debian package %s",
		strings.Join(e.Names, " or "), e.Purpose, e.Package)
}

// findTool locates the program for flavor and method: the environment
// variable's path if set (to pick one build among several), else $PATH.
func findTool(ctx context.Context, flavor replication.Flavor, method Method) (tool, error) {
	c := toolFor(flavor, method)
	path, err := progs.Override(c.env)
	if err != nil {
		return tool{}, err
	}
	if path == "" {
		if path, err = progs.OnPath(c.names...); err != nil {
			return tool{}, &ToolMissingError{Names: c.names, Package: c.pkg, Purpose: c.purpose}
		}
	}
	t := tool{Name: c.names[0], Path: path}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(vctx, path, "--version").CombinedOutput()
	if err != nil {
		return tool{}, fmt.Errorf("%s --version: %w: %s", path, err, bytes.TrimSpace(out))
	}
	// mariabackup prints its version on stderr among InnoDB notes; keep the
	// line that names the tool.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Version = strings.TrimSpace(lines[0])
	for _, l := range lines {
		if strings.Contains(l, filepath.Base(path)) || strings.Contains(l, c.names[0]) {
			t.Version = strings.TrimSpace(l)
			break
		}
	}
	return t, nil
}

// workDir is the snapshot's private temp directory: the option file with
// the password and mariabackup's --target-dir. Removed by cleanup.
type workDir struct {
	Dir          string
	DefaultsFile string
}

// newWorkDir creates a 0700 directory holding a 0600 option file with the
// connection settings, so the password reaches the tool without showing on
// its command line (ps) or in its environment (/proc/PID/environ is
// readable by the same user, the command line by everyone).
func newWorkDir(src replication.Config) (*workDir, error) {
	dir, err := os.MkdirTemp("", "binarc-snapshot-")
	if err != nil {
		return nil, fmt.Errorf("create a temp directory for the backup tool: %w", err)
	}
	w := &workDir{Dir: dir, DefaultsFile: filepath.Join(dir, "client.cnf")}
	// protocol=tcp: with host=localhost the client would otherwise use the
	// unix socket and ignore the port.
	content := fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=%s\nport=%d\nprotocol=tcp\n",
		optionValue(src.User), optionValue(src.Password), optionValue(src.Host), src.Port)
	content += src.TLS.OptionFileLines()
	if err := os.WriteFile(w.DefaultsFile, []byte(content), 0o600); err != nil {
		w.cleanup()
		return nil, fmt.Errorf("write the backup tool's option file: %w", err)
	}
	return w, nil
}

func (w *workDir) cleanup() { os.RemoveAll(w.Dir) }

// optionValue quotes a value for a MySQL option file, which understands
// double quotes with backslash escapes. Control characters are written as
// the escapes the option file parser knows (\n, \t, \r, \b).
func optionValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`, "\b", `\b`)
	return `"` + r.Replace(s) + `"`
}

// toolEnv is the environment for a backup tool: ours, with HOME pointing
// at the work directory so a ~/.my.cnf (read after --defaults-extra-file)
// cannot replace the credentials binarc passes.
func (w *workDir) toolEnv() []string {
	env := []string{"HOME=" + w.Dir}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "MYSQL_PWD=") || strings.HasPrefix(kv, "BINARC_SOURCE_PASSWORD=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
