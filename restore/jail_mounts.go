package restore

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// enterJail confines this process, alone in a new mount namespace and
// still root: the restore's directories writable, every other mount
// read-only, the hidden directories empty; then it becomes the sandbox
// user, for good (no_new_privs: no setuid program gives root back), and
// asks again to die with binarc (a change of credentials clears that).
func enterJail(spec jailSpec) error {
	// Mount points are real paths: a --datadir reached through a symbolic
	// link is bound, and kept writable, where it really is.
	for _, paths := range [][]string{spec.Writable, spec.Needed} {
		for i, p := range paths {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				paths[i] = real
			}
		}
	}
	// Nothing done here may reach the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mounts private (is this a new mount namespace?): %w", err)
	}
	for _, d := range spec.Writable {
		if err := unix.Mount(d, d, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", d, err)
		}
	}
	points, err := mountPoints()
	if err != nil {
		return err
	}
	for _, mp := range points {
		if underAny(mp, spec.Writable) {
			continue
		}
		if err := remountReadOnly(mp); err != nil {
			return err
		}
	}
	if err := hideDirs(spec); err != nil {
		return err
	}
	if !spec.HostNetwork {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	return dropPrivileges(spec.UID, spec.GID)
}

// mountPoints lists this namespace's mount points, parents first.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		points = append(points, unescapeMountinfo(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	sort.SliceStable(points, func(i, j int) bool { return len(points[i]) < len(points[j]) })
	return points, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// remountReadOnly makes one mount read-only in this namespace, keeping
// its other flags (a bind remount must repeat nosuid, nodev, noexec).
func remountReadOnly(mp string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		if os.IsNotExist(err) || os.IsPermission(err) {
			return nil // shadowed by a later mount
		}
		return fmt.Errorf("statfs %s: %w", mp, err)
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms int64 }{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st.Flags&f.st != 0 {
			flags |= uintptr(f.ms)
		}
	}
	if err := unix.Mount("", mp, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", mp, err)
	}
	return nil
}

// hideDirs mounts an empty read-only tmpfs over each hidden directory
// that exists and holds nothing the program needs or writes.
func hideDirs(spec jailSpec) error {
	keep := append(append([]string{}, spec.Writable...), spec.Needed...)
	for _, h := range jailHidden {
		if st, err := os.Stat(h); err != nil || !st.IsDir() {
			continue
		}
		inside := false
		for _, k := range keep {
			if under(filepath.Clean(k), h) {
				inside = true
			}
		}
		if inside {
			continue
		}
		if err := unix.Mount("tmpfs", h, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0755"); err != nil {
			return fmt.Errorf("hide %s: %w", h, err)
		}
	}
	return nil
}

// dropPrivileges becomes uid/gid with no supplementary groups, for good.
// no_new_privs and the parent-death signal belong to the calling thread:
// RunJail locks it, and execs from it.
func dropPrivileges(uid, gid uint32) error {
	if uid == 0 {
		return fmt.Errorf("refusing to run a jailed program as root")
	}
	// The standard library's calls change every thread's credentials.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(int(gid), int(gid), int(gid)); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setresuid(int(uid), int(uid), int(uid)); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	// binarc may have died between the clone and the prctl above.
	if os.Getppid() == 1 {
		return fmt.Errorf("binarc is gone")
	}
	return nil
}
