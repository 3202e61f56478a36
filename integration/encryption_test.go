package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/integration/testenv"
)

// ageKeyFile makes an age key pair and writes the identity file as
// age-keygen does; it returns the file and the public key.
func ageKeyFile(t *testing.T, name string) (path, public string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), name+".key")
	body := "# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, id.Recipient().String()
}

// storedFilesContaining lists the files below the S3 server's data
// directory that contain needle: every byte the bucket's owner holds.
func storedFilesContaining(t *testing.T, dir string, needle []byte) (hits []string, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(data, needle) {
			hits = append(hits, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, files
}

// binlogContains tells whether any of the primary's binlog files holds
// needle in clear.
func binlogContains(t *testing.T, files []string, needle []byte) bool {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, needle) {
			return true
		}
	}
	return false
}

// TestEncryptedArchiveRoundTrip: binarc stream and snapshot with two
// recipients (a daily key and an offline recovery key) against versitygw.
// The bucket's files hold neither a marker written into rows nor the
// password of a CREATE USER, though the primary's binlog holds both in
// clear; binlog fetch with an identity rebuilds every file byte for byte;
// a point-in-time restore with either identity equals the primary's
// checksums; a restore without an identity, with a wrong one, or from an
// object flipped, truncated or swapped with another, is refused with an
// error that says why, and writes nothing.
func TestEncryptedArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	daily, dailyPub := ageKeyFile(t, "daily")
	recovery, recoveryPub := ageKeyFile(t, "recovery")
	wrong, wrongPub := ageKeyFile(t, "wrong")
	const rowMarker = "ROW-MARKER-c0ffee-4711"
	const password = "pw-Marker-9b1e77"

	encEnv := []string{"BINARC_ENCRYPT_TO=" + dailyPub + "," + recoveryPub}
	p := e.startEnv(encEnv, e.streamArgs()...)
	phase := func(from, to int) {
		if err := writeLoad(ctx, e.primary, loadOptions{From: from, To: to, FlushAt: 40}); err != nil {
			t.Fatal(err)
		}
	}
	phase(0, 60)
	e.primary.Exec(t,
		"CREATE TABLE app.secret (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB",
		"INSERT INTO app.secret VALUES (1, '"+rowMarker+"'), (2, CONCAT('"+rowMarker+"', '-2'))",
		"CREATE USER 'leaky'@'%' IDENTIFIED BY '"+password+"'")
	e.caughtUpSnapshot(t, "encrypted snapshot", physUser, "--encrypt-to", dailyPub, "--encrypt-to", recoveryPub)
	phase(60, 120)
	e.primary.Exec(t, "UPDATE app.secret SET v = CONCAT(v, '-updated') WHERE id = 1")
	cp := takeCheckpoint(t, e.primary, "after the snapshot and rotations")
	phase(120, 140)
	e.waitArchived(time.Minute)
	e.waitCompacted(time.Minute)
	// A few separate commits after the compaction, each in a segment of
	// its own (200 ms flush interval), for the tampering below.
	for i := 0; i < 3; i++ {
		e.primary.Exec(t, "INSERT INTO app.secret VALUES ("+strconv.Itoa(3+i)+", 'tail')")
		time.Sleep(400 * time.Millisecond)
	}
	e.waitArchived(time.Minute)
	p.stop(t)

	// What the bucket's owner sees.
	for _, needle := range []string{rowMarker, password} {
		if !binlogContains(t, e.primary.BinlogFiles(t), []byte(needle)) {
			t.Fatalf("the primary's binlog does not hold %q in clear: the test proves nothing", needle)
		}
		hits, files := storedFilesContaining(t, e.s3.DataDir(), []byte(needle))
		if files < 5 || len(hits) > 0 {
			t.Fatalf("%q found in stored files %v (of %d files)", needle, hits, files)
		}
	}
	e.compareWithPrimary("--identity", recovery)

	// Refusals first, while nothing is damaged: no identity, a wrong one.
	restoreArgs := func(dir string, extra ...string) []string {
		return append([]string{"restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest"}, extra...)
	}
	refused := func(what string, args []string, want ...string) {
		t.Helper()
		// Reachable by the mysql user: an unreachable --datadir is refused
		// first, before the archive is read.
		dir := filepath.Join(reachableTempDir(t), "never")
		out, code := e.run(restoreArgs(dir, args...)...)
		if code == 0 {
			t.Fatalf("%s: restore succeeded:\n%s", what, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the error does not say %q:\n%s", what, w, tail(out, 3000))
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: the refused restore created %s", what, dir)
		}
	}
	refused("no identity", nil, "--identity", dailyPub, recoveryPub)
	refused("wrong identity", []string{"--identity", wrong}, dailyPub, wrongPub)
	if out, code := e.run("binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--dir", t.TempDir()); code == 0 || !strings.Contains(out, "--identity") {
		t.Errorf("binlog fetch without identity (%d):\n%s", code, out)
	}
	// Browsing needs no key; reading statements does.
	if out, code := e.run("ls", "--store", e.store, "--cluster", e.cluster); code != 0 || !strings.Contains(out, "mysql-bin.000001") || !strings.Contains(out, "encrypted (age) to ") {
		t.Errorf("ls of an encrypted archive (%d):\n%s", code, tail(out, 2000))
	}
	if out, code := e.run("binlog", "events", "--store", e.store, "--cluster", e.cluster, "--grep", "leaky"); code == 0 || !strings.Contains(out, dailyPub) {
		t.Errorf("binlog events without identity (%d):\n%s", code, tail(out, 2000))
	}
	if out, code := e.run("binlog", "events", "--store", e.store, "--cluster", e.cluster, "--grep", "leaky", "--identity", daily); code != 0 || !strings.Contains(out, "CREATE USER") {
		t.Errorf("binlog events with the identity (%d):\n%s", code, tail(out, 2000))
	}

	// Point-in-time restores, one per identity.
	for _, id := range []string{daily, recovery} {
		srv, _ := e.restoreDatadir(t, "--to", cp.time.UTC().Format(time.RFC3339), "--identity", id)
		compareChecksums(t, "encrypted restore with "+filepath.Base(id), tableChecksums(t, srv), cp.sums)
	}
	if out, code := e.runEnv([]string{"BINARC_IDENTITY_FILE=" + daily}, "verify", "--store", e.store, "--cluster", e.cluster); code != 0 {
		t.Errorf("verify with the identity (%d):\n%s", code, tail(out, 3000))
	}
	if out, code := e.run("verify", "--store", e.store, "--cluster", e.cluster); code == 0 || !strings.Contains(out, "--identity") || !strings.Contains(out, dailyPub) {
		t.Errorf("verify without an identity (%d):\n%s", code, tail(out, 3000))
	}

	// Tampering with the live file's sealed segments.
	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files, err := cat.Files(ctx, tls[len(tls)-1])
	if err != nil {
		t.Fatal(err)
	}
	live := files[len(files)-1].Name
	segs, err := cat.Segments(ctx, tls[len(tls)-1], live)
	if err != nil || len(segs) < 2 {
		t.Fatalf("the live file %s has %d segments (%v): need 2", live, len(segs), err)
	}
	a, b := segs[len(segs)-2].Key, segs[len(segs)-1].Key
	origA, origB := objGet(t, cat, a), objGet(t, cat, b)
	tamper := func(what string, damage func(), want ...string) {
		t.Helper()
		damage()
		refused(what, []string{"--identity", daily}, want...)
		objPut(t, cat, a, origA)
		objPut(t, cat, b, origB)
	}
	tamper("flipped byte", func() {
		x := bytes.Clone(origB)
		x[len(x)-30] ^= 0x01
		objPut(t, cat, b, x)
	}, b, "corrupt or was altered")
	tamper("truncated", func() { objPut(t, cat, b, origB[:len(origB)-100]) }, b, "corrupt or was altered")
	tamper("swapped", func() {
		objPut(t, cat, a, origB)
		objPut(t, cat, b, origA)
	}, "sealed as", a)

	// A writer without --encrypt-to refuses the encrypted timeline.
	out, code := e.run(e.streamArgs()...)
	if code == 0 || !strings.Contains(out, "--encrypt-to") || !strings.Contains(out, dailyPub) {
		t.Errorf("stream without --encrypt-to on an encrypted timeline (%d):\n%s", code, tail(out, 3000))
	}
	if out, code := e.run(e.snapshotArgs(physUser)...); code == 0 || !strings.Contains(out, "--encrypt-to") {
		t.Errorf("snapshot without --encrypt-to of an encrypted archive (%d):\n%s", code, tail(out, 3000))
	}
}

func objGet(t *testing.T, cat archive.Catalog, key string) []byte {
	t.Helper()
	data, _, err := objstore.ReadAll(context.Background(), cat.Store, key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func objPut(t *testing.T, cat archive.Catalog, key string, data []byte) {
	t.Helper()
	if _, err := cat.Store.Put(context.Background(), key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptionKeyRotation: binarc stream restarted with another
// recipient starts a new timeline at the file where the old one ends, so
// the two leave no gap; each side opens with its own key only, and a
// reader with the other one is told which key it needs.
func TestEncryptionKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	ctx := context.Background()
	oldKey, oldPub := ageKeyFile(t, "old")
	newKey, newPub := ageKeyFile(t, "new")
	phase := func(from, to int) {
		if err := writeLoad(ctx, e.primary, loadOptions{From: from, To: to, FlushAt: 30}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.start(e.streamArgs("--encrypt-to", oldPub)...)
	phase(0, 50)
	e.waitArchived(time.Minute)
	p.stop(t)
	p = e.start(e.streamArgs("--encrypt-to", newPub)...)
	p.waitLog(t, "key rotation", time.Minute)
	phase(50, 100)
	// The new timeline holds the files from the one the old ended in.
	waitSettled(t, e.primary.BinlogFiles(t))
	deadline := time.Now().Add(time.Minute)
	for {
		why := e.archivedFrom(e.catalog())
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new timeline did not catch up: %s", why)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(t)
	cp := takeCheckpoint(t, e.primary, "after the rotation")

	cat := e.catalog()
	tls, err := cat.Timelines(ctx)
	if err != nil || len(tls) != 2 {
		t.Fatalf("timelines %v (%v), want two", tls, err)
	}
	ti, err := cat.ReadTimeline(ctx, tls[1])
	if err != nil {
		t.Fatal(err)
	}
	if ti.Encryption == nil || len(ti.Encryption.Recipients) != 1 || ti.Encryption.Recipients[0] != newPub || ti.Previous == nil || ti.Previous.Timeline != tls[0] {
		t.Fatalf("new timeline's manifest: %+v", ti)
	}

	// The newest state is on the new timeline: the old key alone cannot
	// reach it, and the refusal names the key it needs.
	if out, code := e.runEnv([]string{"BINARC_TARGET_PASSWORD="}, "restore", "--store", e.store, "--cluster", e.cluster,
		"--from", "mysql-bin.000001:4", "--to", "latest", "--dry-run", "--identity", oldKey); code == 0 || !strings.Contains(out, newPub) {
		t.Errorf("latest with the old key only (%d):\n%s", code, tail(out, 3000))
	}
	// One restore crosses the rotation's join, with an identity file that
	// holds both keys.
	both := filepath.Join(t.TempDir(), "both.txt")
	var keys []byte
	for _, k := range []string{oldKey, newKey} {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b...)
	}
	if err := os.WriteFile(both, keys, 0o600); err != nil {
		t.Fatal(err)
	}
	one, out := e.restoreInto(t, "--to", "latest", "--identity", both)
	if !strings.Contains(out, tls[1]) {
		t.Errorf("the restore's plan does not cross into the new timeline %s:\n%s", tls[1], tail(out, 3000))
	}
	compareChecksums(t, "one restore across the key rotation's join", tableChecksums(t, one), cp.sums)
}

// archivedFrom is archivedState for a timeline that starts at a later file
// than the primary's first: "" once its files hold every byte the
// primary has of them.
func (e *env) archivedFrom(cat archive.Catalog) string {
	ctx := context.Background()
	tls, err := cat.Describe(ctx)
	if err != nil || len(tls) == 0 {
		return fmt.Sprintf("no timeline (%v)", err)
	}
	newest := tls[len(tls)-1]
	files := map[string]*archive.FileState{}
	for _, f := range newest.Files {
		files[f.File] = f
	}
	for _, r := range e.primary.Query(e.t, "SHOW BINARY LOGS") {
		if r[0] < newest.Info.StartFile {
			continue
		}
		f := files[r[0]]
		if f == nil {
			return "not archived yet: " + r[0]
		}
		if strconv.FormatUint(f.Size, 10) != r[1] {
			return fmt.Sprintf("%s: archived %d of %s bytes", r[0], f.Size, r[1])
		}
	}
	return ""
}
