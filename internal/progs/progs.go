// Package progs finds the programs binarc runs (mariadbd, mariabackup,
// mbstream, mariadb-binlog, mariadb-dump, the mariadb client), the same
// way for restore, snapshot and the tests: a list of names in order of
// preference (the MariaDB name first, the MySQL one after), each looked
// for everywhere before the next, and only executable files count.
package progs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// systemDirs are searched after $PATH by Find: mariadbd lives in
// /usr/sbin, which is not on every user's $PATH.
var systemDirs = []string{"/usr/sbin", "/usr/bin"}

// NotFoundError says that none of Names was found, and where binarc
// looked. Callers add the fix (the package to install).
type NotFoundError struct {
	Names []string
	// Dirs are the directories searched after $PATH.
	Dirs []string
}

func (e *NotFoundError) Error() string {
	where := "on $PATH"
	if len(e.Dirs) > 0 {
		where += ", in " + strings.Join(e.Dirs, " or ")
	}
	return fmt.Sprintf("%s not found %s", strings.Join(e.Names, " or "), where)
}

// Find returns the path of the first of names found on $PATH or in
// /usr/sbin or /usr/bin, for server programs an unprivileged user's $PATH
// may lack. The error is a *NotFoundError.
func Find(names ...string) (string, error) {
	return find(names, systemDirs)
}

// OnPath returns the path of the first of names found on $PATH only, for
// programs the operator chooses through $PATH (the snapshot tools: a
// $PATH without them means they are missing). The error is a
// *NotFoundError.
func OnPath(names ...string) (string, error) {
	return find(names, nil)
}

func find(names, dirs []string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range dirs {
			if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
				return p, nil
			}
		}
	}
	return "", &NotFoundError{Names: names, Dirs: dirs}
}

// Override returns the program named by the environment variable env, to
// pick one build among several; "" when env is unset or empty. A path
// that is not an executable file is an error naming the variable.
func Override(env string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		return "", nil
	}
	if _, err := exec.LookPath(p); err != nil {
		return "", fmt.Errorf("$%s=%s: %w", env, p, err)
	}
	return p, nil
}
