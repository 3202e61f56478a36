package layers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/binarc/binarc"

// listed is what `go list -json` says of one package.
type listed struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func goList(t *testing.T) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// row is one package's line of the table: what its shipped code may
// import, and what its tests may import besides.
type row struct{ code, tests []string }

// rules reads the ```layers block of docs/ARCHITECTURE.md: one line per
// package, "pkg: allowed allowed/* ... | test-only ...". A pattern ending
// in /* allows every package below it.
func rules(t *testing.T) map[string]row {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]row{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```layers":
			in = true
		case in && line == "```":
			in = false
		case in && line != "":
			pkg, allowed, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("ARCHITECTURE.md layers: %q is not \"package: imports\"", line)
			}
			code, tests, _ := strings.Cut(allowed, "|")
			out[strings.TrimSpace(pkg)] = row{strings.Fields(code), strings.Fields(tests)}
		}
	}
	if len(out) == 0 {
		t.Fatal("docs/ARCHITECTURE.md has no ```layers block")
	}
	return out
}

// allowedBy tells whether a row's patterns allow importing imp. A
// wildcard below a folder ("internal/*") never allows a test fixture: a
// row names a fixture it may import, or uses "*".
func allowedBy(patterns []string, imp string) bool {
	for _, p := range patterns {
		if p == imp || p == "*" {
			return true
		}
		if strings.HasSuffix(p, "/*") && strings.HasPrefix(imp, strings.TrimSuffix(p, "*")) && !isFixture(imp) {
			return true
		}
	}
	return false
}

// TestImportLayers: every binarc package is in the table, and its
// non-test imports of binarc packages are among those its row allows.
// Test files may also import the test fixtures (…test packages and
// internal/testenv); shipped code may not.
func TestImportLayers(t *testing.T) {
	table := rules(t)
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := table[rel]
		if !ok {
			t.Errorf("package %s is not in docs/ARCHITECTURE.md's layers table: add a row saying what it may import", rel)
			continue
		}
		check := func(imports []string, test bool) {
			allowed := r.code
			if test {
				allowed = append(append([]string{}, r.code...), r.tests...)
			}
			var bad []string
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module+"/") {
					continue
				}
				dep := strings.TrimPrefix(imp, module+"/")
				if dep == rel || allowedBy(allowed, dep) {
					continue
				}
				if test && isFixture(dep) {
					continue
				}
				bad = append(bad, dep)
			}
			if len(bad) > 0 {
				sort.Strings(bad)
				kind := "imports"
				if test {
					kind = "tests import"
				}
				t.Errorf("%s %s %s, which its row in docs/ARCHITECTURE.md does not allow (%s)", rel, kind, strings.Join(bad, ", "), strings.Join(allowed, " "))
			}
		}
		check(p.Imports, false)
		check(append(append([]string{}, p.TestImports...), p.XTestImports...), true)
	}
}

func isFixture(rel string) bool {
	base := path.Base(rel)
	return rel == "internal/testenv" || rel == "integration/testenv" || strings.HasSuffix(base, "test") && base != "test"
}

// storeWrite matches a call that writes to or deletes from a store.
var storeWrite = regexp.MustCompile(`\.(Put|PutOnce|PutStream|PutBuffers|Delete|DeleteVersion|SweepUploads|Compact)\(`)

// TestReadersNeverWrite: restore, serve and verify read the archive and
// never change it (a failing restore must leave the bucket as it was):
// none of their shipped files calls a store's writing methods.
func TestReadersNeverWrite(t *testing.T) {
	root := repoRoot(t)
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		top, _, _ := strings.Cut(rel, "/")
		if top != "restore" && top != "serve" && top != "verify" {
			continue
		}
		for _, f := range p.GoFiles {
			data, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(data), "\n") {
				if storeWrite.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "//") {
					rp, _ := filepath.Rel(root, filepath.Join(p.Dir, f))
					t.Errorf("%s:%d writes to a store (%s): %s reads the archive only", rp, i+1, strings.TrimSpace(line), top)
				}
			}
		}
	}
}

func TestAllowedBy(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		imp      string
		want     bool
	}{
		{[]string{"archive", "internal/*"}, "archive", true},
		{[]string{"archive", "internal/*"}, "internal/retry", true},
		{[]string{"archive", "internal/*"}, "internal/testenv", false},
		{[]string{"archive", "internal/*"}, "archive/crypt", false},
		{[]string{"archive", "internal/*"}, "restore", false},
		{[]string{"internal/testenv"}, "internal/testenv", true},
		{[]string{"*"}, "internal/testenv", true},
		{nil, "archive", false},
	} {
		if got := allowedBy(c.patterns, c.imp); got != c.want {
			t.Errorf("allowedBy(%v, %s) = %v, want %v", c.patterns, c.imp, got, c.want)
		}
	}
}

func TestStoreWritePattern(t *testing.T) {
	for line, want := range map[string]bool{
		`_, err := store.Put(ctx, key, data, opts)`:     true,
		`if err := c.PutOnce(ctx, k, b); err != nil {`:  true,
		`err := s.Delete(ctx, key)`:                     true,
		`data, _, err := objstore.ReadSmall(ctx, s, k)`: false,
		`p := filepath.Join(dir, name)`:                 false,
	} {
		if got := storeWrite.MatchString(line); got != want {
			t.Errorf("%q: store write %v, want %v", line, got, want)
		}
	}
}
