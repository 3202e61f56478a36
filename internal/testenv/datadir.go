package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// mariadb-install-db takes ~0.6 s (over 1.5 s on a busy machine); copying its
// result takes ~70 ms. So the first LaunchMariaDB on a machine initialises a
// template datadir in the cache, and every server after that starts on a
// copy. The template is keyed by the mariadbd binary and the install options,
// so an upgraded MariaDB gets a fresh one.

var templateMu sync.Mutex // serialises template creation within this process

// CacheDir is ${BINARC_CACHE:-$HOME/.cache/binarc}, where scripts/deps.sh
// installs versitygw and where the datadir templates live.
func CacheDir() (string, error) {
	if dir := os.Getenv("BINARC_CACHE"); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: set $BINARC_CACHE or $HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "binarc"), nil
}

// initDataDir makes dataDir a freshly initialised datadir: a copy of the
// cached template when it can, else by running mariadb-install-db into it.
func initDataDir(mariadbd, installDB string, installArgs []string, dataDir string) error {
	template, err := templateDataDir(mariadbd, installDB, installArgs)
	if err == nil {
		return copyTree(template, dataDir)
	}
	// A read-only or missing cache only costs time.
	return installDataDir(installDB, installArgs, dataDir)
}

// installDataDir runs mariadb-install-db into dataDir.
func installDataDir(installDB string, installArgs []string, dataDir string) error {
	args := append([]string{"--no-defaults", "--datadir=" + dataDir}, installArgs...)
	if out, err := exec.Command(installDB, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", installDB, strings.Join(args, " "), err, out)
	}
	return nil
}

// templateDataDir returns the cached template datadir for this mariadbd and
// these install options, creating it if needed. Creation installs into a
// temporary directory and renames it into place, so a template that exists
// is complete; of two processes racing to create it, the loser discards its
// copy.
func templateDataDir(mariadbd, installDB string, installArgs []string) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(mariadbd)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%s", mariadbd, fi.Size(), fi.ModTime().UnixNano(),
		installDB, strings.Join(installArgs, "\x00"))
	dir := filepath.Join(cache, "mariadb-datadir", hex.EncodeToString(h.Sum(nil))[:16])

	templateMu.Lock()
	defer templateMu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := installDataDir(installDB, installArgs, filepath.Join(tmp, "data")); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "data"), dir); err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			return dir, nil // another process won the race
		}
		return "", err
	}
	return dir, nil
}

// copyTree copies the directory src to dst (which must not exist), keeping
// file modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copySparse(path, target, info.Mode().Perm())
		default:
			return fmt.Errorf("copy datadir: %s: not a regular file or directory", path)
		}
	})
}

// copySparse copies a regular file, leaving holes where src has zero blocks:
// a fresh datadir is 65 MB but mostly the zeroed redo log, so it stays about
// 7 MB on disk.
func copySparse(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	const blockSize = 64 << 10
	buf := make([]byte, blockSize)
	zero := make([]byte, blockSize)
	var size int64
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				_, err = out.Seek(int64(n), io.SeekCurrent)
			} else {
				_, err = out.Write(buf[:n])
			}
			if err != nil {
				out.Close()
				return err
			}
			size += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	// A trailing hole needs the size set explicitly.
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
