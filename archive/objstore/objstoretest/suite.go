// Package objstoretest is the conformance suite every objstore.Store
// implementation must pass. A backend's test calls Run with a constructor
// that returns a fresh, empty store for each subtest.
package objstoretest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/binarc/binarc/archive/objstore"
)

// Run checks that the stores made by newStore keep every contract of
// objstore.Store. newStore is called once per subtest and must return an
// empty store; it registers its own cleanup with t.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"PutGetRoundTrip", testPutGet},
		{"EmptyObject", testEmptyObject},
		{"Overwrite", testOverwrite},
		{"GetMissing", testGetMissing},
		{"IfAbsent", testIfAbsent},
		{"PutBuffers", testPutBuffers},
		{"IfAbsentConcurrent", testIfAbsentConcurrent},
		{"IfMatch", testIfMatch},
		{"IfMatchConcurrent", testIfMatchConcurrent},
		{"ListDirsAndObjects", testListDirsAndObjects},
		{"ListSorted", testListSorted},
		{"ListNested", testListNested},
		{"ListRoot", testListRoot},
		{"ListMissingPrefix", testListMissingPrefix},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"LargeObject", testLargeObject},
		{"KeyCharacters", testKeyCharacters},
		{"String", testString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func testPutGet(t *testing.T, s objstore.Store) {
	data := []byte("hello, binlog")
	put := mustPut(t, s, "a/b/obj", data, objstore.PutOptions{})
	if put.Key != "a/b/obj" || put.Size != int64(len(data)) || put.ETag == "" {
		t.Errorf("Put info = %+v, want key a/b/obj, size %d, an ETag", put, len(data))
	}
	got, info := mustGet(t, s, "a/b/obj")
	if !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	if info.Key != "a/b/obj" || info.Size != int64(len(data)) {
		t.Errorf("Get info = %+v, want key a/b/obj size %d", info, len(data))
	}
	if info.ETag != put.ETag {
		t.Errorf("Get ETag %q != Put ETag %q", info.ETag, put.ETag)
	}
	if info.ModTime.IsZero() {
		t.Errorf("Get ModTime is zero")
	}
}

func testEmptyObject(t *testing.T, s objstore.Store) {
	mustPut(t, s, "empty", nil, objstore.PutOptions{})
	got, info := mustGet(t, s, "empty")
	if len(got) != 0 || info.Size != 0 {
		t.Errorf("Get empty object = %q (size %d), want nothing", got, info.Size)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	first := mustPut(t, s, "k", []byte("one"), objstore.PutOptions{})
	second := mustPut(t, s, "k", []byte("two, longer"), objstore.PutOptions{})
	if first.ETag == second.ETag {
		t.Errorf("ETag unchanged by overwrite with different content: %q", first.ETag)
	}
	got, info := mustGet(t, s, "k")
	if string(got) != "two, longer" || info.ETag != second.ETag {
		t.Errorf("Get after overwrite = %q etag %q, want %q etag %q", got, info.ETag, "two, longer", second.ETag)
	}
}

func testGetMissing(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	mustPut(t, s, "dir/x", []byte("x"), objstore.PutOptions{})
	for _, key := range []string{"missing", "dir/missing", "nodir/missing", "dir"} {
		rc, _, err := s.Get(ctx, key)
		if err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded, want ErrNotExist", key)
			continue
		}
		if !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("Get(%q) = %v, want ErrNotExist", key, err)
		}
	}
}

func testIfAbsent(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	mustPut(t, s, "lease", []byte("first"), objstore.PutOptions{IfAbsent: true})
	_, err := s.Put(ctx, "lease", []byte("second"), objstore.PutOptions{IfAbsent: true})
	if !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("second IfAbsent Put = %v, want ErrExist", err)
	}
	if got, _ := mustGet(t, s, "lease"); string(got) != "first" {
		t.Errorf("after refused IfAbsent Put, content = %q, want %q", got, "first")
	}
}

// testPutBuffers stores an object given in pieces (objstore.PutBuffers),
// of which some are empty, and honours IfAbsent.
func testPutBuffers(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	big := make([]byte, 3<<20+17)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{big[:1<<20], nil, big[1<<20 : 3<<20], big[3<<20:]}
	info, err := objstore.PutBuffers(ctx, s, "segs/one", bufs, objstore.PutOptions{IfAbsent: true})
	if err != nil {
		t.Fatalf("PutBuffers: %v", err)
	}
	if info.Size != int64(len(big)) {
		t.Errorf("PutBuffers info size %d, want %d", info.Size, len(big))
	}
	if got, _ := mustGet(t, s, "segs/one"); !bytes.Equal(got, big) {
		t.Errorf("Get after PutBuffers: %d bytes, not the %d put", len(got), len(big))
	}
	_, err = objstore.PutBuffers(ctx, s, "segs/one", [][]byte{[]byte("other")}, objstore.PutOptions{IfAbsent: true})
	if !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("second IfAbsent PutBuffers = %v, want ErrExist", err)
	}
}

func testIfAbsentConcurrent(t *testing.T, s objstore.Store) {
	race(t, s, "race", objstore.PutOptions{IfAbsent: true}, objstore.ErrExist)
}

// race has 8 writers put to key at once with opts: exactly one must win,
// the others fail with lost, and the object holds the winner's content.
func race(t *testing.T, s objstore.Store, key string, opts objstore.PutOptions, lost error) {
	ctx := t.Context()
	const writers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int
	)
	for i := range writers {
		wg.Go(func() {
			_, err := s.Put(ctx, key, fmt.Appendf(nil, "writer %d", i), opts)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			case !errors.Is(err, lost):
				t.Errorf("writer %d: Put %+v = %v, want nil or %v", i, opts, err, lost)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d writers with %+v won (%v), want exactly 1", len(winners), opts, winners)
	}
	want := fmt.Sprintf("writer %d", winners[0])
	if got, _ := mustGet(t, s, key); string(got) != want {
		t.Errorf("content = %q, want the winner's %q", got, want)
	}
}

func testIfMatch(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	v1 := mustPut(t, s, "manifest", []byte("v1"), objstore.PutOptions{})
	_, read := mustGet(t, s, "manifest")

	// The ETag a Get returns is good for IfMatch.
	v2 := mustPut(t, s, "manifest", []byte("v2"), objstore.PutOptions{IfMatch: read.ETag})
	if got, _ := mustGet(t, s, "manifest"); string(got) != "v2" {
		t.Fatalf("after IfMatch Put, content = %q, want v2", got)
	}

	// v1's ETag is stale now.
	_, err := s.Put(ctx, "manifest", []byte("v3"), objstore.PutOptions{IfMatch: v1.ETag})
	if !errors.Is(err, objstore.ErrPrecondition) {
		t.Errorf("IfMatch Put with stale ETag = %v, want ErrPrecondition", err)
	}
	_, err = s.Put(ctx, "manifest", []byte("v3"), objstore.PutOptions{IfMatch: "0123456789abcdef0123456789abcdef"})
	if !errors.Is(err, objstore.ErrPrecondition) {
		t.Errorf("IfMatch Put with made-up ETag = %v, want ErrPrecondition", err)
	}
	if got, _ := mustGet(t, s, "manifest"); string(got) != "v2" {
		t.Errorf("after refused IfMatch Puts, content = %q, want v2", got)
	}

	// The ETag Put returned is good for IfMatch too.
	mustPut(t, s, "manifest", []byte("v3"), objstore.PutOptions{IfMatch: v2.ETag})

	// No object at all fails the precondition.
	_, err = s.Put(ctx, "no-manifest", []byte("v1"), objstore.PutOptions{IfMatch: v1.ETag})
	if !errors.Is(err, objstore.ErrPrecondition) {
		t.Errorf("IfMatch Put on a missing key = %v, want ErrPrecondition", err)
	}
	if rc, _, err := s.Get(ctx, "no-manifest"); err == nil {
		rc.Close()
		t.Errorf("refused IfMatch Put on a missing key created it")
	}
}

// testIfMatchConcurrent checks IfMatch is a compare-and-swap: of writers
// racing from the same version, exactly one wins.
func testIfMatchConcurrent(t *testing.T, s objstore.Store) {
	base := mustPut(t, s, "cas", []byte("base"), objstore.PutOptions{})
	race(t, s, "cas", objstore.PutOptions{IfMatch: base.ETag}, objstore.ErrPrecondition)
}

func testListDirsAndObjects(t *testing.T, s objstore.Store) {
	mustPut(t, s, "p/a", []byte("1"), objstore.PutOptions{})
	mustPut(t, s, "p/b/c", []byte("22"), objstore.PutOptions{})
	mustPut(t, s, "p/b/d/e", []byte("333"), objstore.PutOptions{})
	mustPut(t, s, "p/z", []byte("4444"), objstore.PutOptions{})
	mustPut(t, s, "q/other", []byte("x"), objstore.PutOptions{})
	wantList(t, s, "p/", []objstore.Entry{
		{Key: "p/a", Size: 1},
		{Key: "p/b/", Dir: true},
		{Key: "p/z", Size: 4},
	})
	wantList(t, s, "p/b/", []objstore.Entry{
		{Key: "p/b/c", Size: 2},
		{Key: "p/b/d/", Dir: true},
	})
}

// testListSorted checks List sorts by key bytes, directories included:
// "a-b" and "a.b" sort before "a/" because '-' and '.' are below '/'.
func testListSorted(t *testing.T, s objstore.Store) {
	for _, key := range []string{"s/b", "s/a/x", "s/a.b", "s/a-b", "s/9", "s/10", "s/B"} {
		mustPut(t, s, key, []byte(key), objstore.PutOptions{})
	}
	wantList(t, s, "s/", []objstore.Entry{
		{Key: "s/10", Size: 4},
		{Key: "s/9", Size: 3},
		{Key: "s/B", Size: 3},
		{Key: "s/a-b", Size: 5},
		{Key: "s/a.b", Size: 5},
		{Key: "s/a/", Dir: true},
		{Key: "s/b", Size: 3},
	})
}

func testListNested(t *testing.T, s objstore.Store) {
	mustPut(t, s, "n/1/2/3/4/obj", []byte("deep"), objstore.PutOptions{})
	wantList(t, s, "n/", []objstore.Entry{{Key: "n/1/", Dir: true}})
	wantList(t, s, "n/1/2/", []objstore.Entry{{Key: "n/1/2/3/", Dir: true}})
	wantList(t, s, "n/1/2/3/4/", []objstore.Entry{{Key: "n/1/2/3/4/obj", Size: 4}})
	if got, _ := mustGet(t, s, "n/1/2/3/4/obj"); string(got) != "deep" {
		t.Errorf("Get nested = %q, want deep", got)
	}
}

func testListRoot(t *testing.T, s objstore.Store) {
	wantList(t, s, "", nil)
	mustPut(t, s, "top", []byte("t"), objstore.PutOptions{})
	mustPut(t, s, "d/x", []byte("x"), objstore.PutOptions{})
	wantList(t, s, "", []objstore.Entry{
		{Key: "d/", Dir: true},
		{Key: "top", Size: 1},
	})
}

func testListMissingPrefix(t *testing.T, s objstore.Store) {
	mustPut(t, s, "present/x", []byte("x"), objstore.PutOptions{})
	mustPut(t, s, "file", []byte("f"), objstore.PutOptions{})
	wantList(t, s, "absent/", nil)
	wantList(t, s, "present/absent/", nil)
	// A prefix naming an object, not a directory, has nothing below it.
	wantList(t, s, "file/", nil)
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	mustPut(t, s, "del/keep", []byte("k"), objstore.PutOptions{})
	mustPut(t, s, "del/sub/x", []byte("x"), objstore.PutOptions{})
	if err := s.Delete(ctx, "del/sub/x"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if rc, _, err := s.Get(ctx, "del/sub/x"); !errors.Is(err, objstore.ErrNotExist) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get after Delete = %v, want ErrNotExist", err)
	}
	// Nothing is below del/sub/ any more, so it is no longer a directory.
	wantList(t, s, "del/", []objstore.Entry{{Key: "del/keep", Size: 1}})
	wantList(t, s, "del/sub/", nil)

	// A deleted key can be created again, also with IfAbsent.
	mustPut(t, s, "del/sub/x", []byte("again"), objstore.PutOptions{IfAbsent: true})
	if got, _ := mustGet(t, s, "del/sub/x"); string(got) != "again" {
		t.Errorf("Get after re-create = %q, want again", got)
	}
}

func testDeleteMissing(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	mustPut(t, s, "dm/x", []byte("x"), objstore.PutOptions{})
	for _, key := range []string{"missing", "dm/missing", "nodir/missing"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of a missing object = %v, want nil", key, err)
		}
	}
	if got, _ := mustGet(t, s, "dm/x"); string(got) != "x" {
		t.Errorf("unrelated object changed by Delete of missing keys: %q", got)
	}
}

func testLargeObject(t *testing.T, s objstore.Store) {
	data := make([]byte, 20<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	put := mustPut(t, s, "big/blob", data, objstore.PutOptions{})
	got, info := mustGet(t, s, "big/blob")
	if !bytes.Equal(got, data) {
		t.Errorf("20 MiB object read back differs (len %d, want %d)", len(got), len(data))
	}
	if info.Size != int64(len(data)) || info.ETag != put.ETag {
		t.Errorf("Get info = %+v, want size %d etag %q", info, len(data), put.ETag)
	}
	wantList(t, s, "big/", []objstore.Entry{{Key: "big/blob", Size: int64(len(data))}})
}

func testKeyCharacters(t *testing.T, s objstore.Store) {
	keys := []string{
		"k/mysql-bin.000042",
		fmt.Sprintf("k/%020d", uint64(4294967296)),
		fmt.Sprintf("k/%020d-%020d", uint64(12), uint64(18446744073709551615)),
		"k/0-1_2.3~4",
		"k/host.example.com-3306/mariadb-bin.999999",
	}
	want := []objstore.Entry{{Key: "k/host.example.com-3306/", Dir: true}}
	for _, key := range keys {
		mustPut(t, s, key, []byte(key), objstore.PutOptions{})
		if got, _ := mustGet(t, s, key); string(got) != key {
			t.Errorf("Get(%q) = %q", key, got)
		}
		if !strings.Contains(strings.TrimPrefix(key, "k/"), "/") {
			want = append(want, objstore.Entry{Key: key, Size: int64(len(key))})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Key < want[j].Key })
	wantList(t, s, "k/", want)
}

func testString(t *testing.T, s objstore.Store) {
	if s.String() == "" {
		t.Errorf("String() is empty; stores must name themselves for logs")
	}
}

func mustPut(t *testing.T, s objstore.Store, key string, data []byte, opts objstore.PutOptions) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, data, opts)
	if err != nil {
		t.Fatalf("Put(%q, %+v): %v", key, opts, err)
	}
	return info
}

func mustGet(t *testing.T, s objstore.Store, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	data, info, err := objstore.ReadAll(t.Context(), s, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return data, info
}

func wantList(t *testing.T, s objstore.Store, prefix string, want []objstore.Entry) {
	t.Helper()
	got, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List(%q):\n got %+v\nwant %+v", prefix, got, want)
	}
}
