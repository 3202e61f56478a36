package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/archive/sign"
	"github.com/binarc/binarc/integration/testenv"
	"github.com/binarc/binarc/replication"
	"github.com/klauspost/compress/zstd"
)

// signKey runs binarc keygen --sign-key and returns the key file, its
// public key and its key id, as printed.
func (e *env) signKey(t *testing.T, name string) (path, public, id string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), name+".pem")
	out, code := e.run("keygen", "--sign-key", path)
	if code != 0 {
		t.Fatalf("binarc keygen (%d):\n%s", code, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, sign.PublicKeyPrefix) {
			public = strings.TrimSpace(l)
		}
		if _, rest, ok := strings.Cut(l, "(key id "); ok {
			id, _, _ = strings.Cut(rest, ")")
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || public == "" || id == "" {
		t.Fatalf("keygen wrote %v (%v), printed:\n%s", fi, err, out)
	}
	if out, code := e.run("keygen", "--sign-key", path); code == 0 || !strings.Contains(out, "never overwrites") {
		t.Fatalf("keygen over an existing key file (%d):\n%s", code, out)
	}
	return path, public, id
}

// segmentHolding finds the segment of timeline tl whose bytes hold marker.
func segmentHolding(t *testing.T, cat archive.Catalog, tl, marker string) (archive.SegmentRef, string) {
	t.Helper()
	ctx := context.Background()
	files, err := cat.Files(ctx, tl)
	noErr(t, err)
	for _, f := range files {
		fs, err := cat.FileState(ctx, tl, f)
		noErr(t, err)
		if fs.CompactedKey != "" {
			// Compacted: its index still names the deleted segments, and
			// a forgery must replace a segment readers read. (Timeline 2
			// compacts its closed files, and the restore across the key
			// rotation reads them signed; skipping them here fixed a
			// flake of make test.)
			continue
		}
		for _, s := range fs.Segments {
			plain, err := cat.ReadSegment(ctx, s.Key)
			noErr(t, err)
			if bytes.Contains(plain, []byte(marker)) {
				return s, f.Name
			}
		}
	}
	t.Fatalf("no segment of timeline %s holds %q", tl, marker)
	return archive.SegmentRef{}, ""
}

// forgeSegment replaces marker by forged (as long) in the segment, fixes
// the changed event's CRC32 so that it replays, and stores it compressed,
// and sealed to sealTo when given (the recipients timeline.json names),
// followed by the original's signature: what anyone who can write to the
// bucket can do. It returns the original object.
func forgeSegment(t *testing.T, cat archive.Catalog, s archive.SegmentRef, tl, file, marker, forged string, sealTo []string) []byte {
	t.Helper()
	orig := objGet(t, cat, s.Key)
	plain, err := cat.ReadSegment(context.Background(), s.Key)
	noErr(t, err)
	i := bytes.Index(plain, []byte(marker))
	copy(plain[i:], forged)
	fixed := false
	noErr(t, replication.Events(plain, s.Start, func(off uint64, h replication.Header, raw []byte) error {
		if at := int(off - s.Start); at <= i && i < at+len(raw) && !replication.HasChecksum(raw) {
			binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
			fixed = true
		}
		return nil
	}))
	if !fixed {
		t.Fatal("no event to fix around the forged bytes")
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	noErr(t, err)
	data := enc.EncodeAll(plain, nil)
	if sealTo != nil {
		sealer, err := crypt.NewSealer(sealTo)
		noErr(t, err)
		seg := &archive.Segment{Timeline: tl, File: file, Start: s.Start, End: s.End, Data: objstore.Chunks{data}}
		chunks, err := archive.SealSegment(sealer, s.Key, seg)
		noErr(t, err)
		data = chunks.Bytes()
	}
	// The original's signature, copied: the forger has no key to make one.
	if _, signed := sign.SplitSigned(orig); signed {
		data = append(data, orig[len(orig)-sign.TrailerSize:]...)
	}
	objPut(t, cat, s.Key, data)
	return orig
}

// TestSignedArchive: binarc stream with --sign-key K1 (a plain timeline),
// restarted with a new key K2 and --encrypt-to (an encrypted timeline),
// against versitygw and MariaDB 10.11. With both keys trusted, restore
// equals the primary and verify is clean; with only the new key the old
// timeline is refused, naming the key. A plaintext segment forged with
// valid CRC32s (its index untouched) and a segment forged and sealed to
// the timeline's own age recipient are each refused, naming the object,
// by restore, serve (a real MariaDB replica), binlog fetch and verify
// with --trust-key; fetch without --trust-key shows the forgery would
// otherwise be read. An unsigned object is refused.
func TestSignedArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.MariaDBOptions{})
	ctx := context.Background()
	k1, pub1, id1 := e.signKey(t, "k1")
	k2, pub2, _ := e.signKey(t, "k2")
	ageKey, agePub := ageKeyFile(t, "age")
	const mark1, forged1 = "SIGNED-MARK-ONE-1111", "FORGED-MARK-ONE-1111"
	const mark2, forged2 = "SIGNED-MARK-TWO-2222", "FORGED-MARK-TWO-2222"
	load := func(from, to int) {
		noErr(t, writeLoad(ctx, e.primary, loadOptions{From: from, To: to, FlushAt: 20}))
	}

	// Timeline 1: plain, segments kept (the forged one has an index).
	p := e.start(e.streamArgs("--sign-key", k1, "--no-compact")...)
	load(0, 30)
	e.primary.Exec(t, "CREATE TABLE app.sig (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB",
		"INSERT INTO app.sig VALUES (1, '"+mark1+"')", "FLUSH BINARY LOGS")
	load(30, 60)
	e.waitArchived(time.Minute)
	p.stop(t)
	// Timeline 2: the stream restarted with a new signing key, encrypted.
	p = e.startEnv([]string{"BINARC_SIGN_KEY_FILE=" + k2}, e.streamArgs("--encrypt-to", agePub)...)
	p.waitLog(t, "encryption starts", time.Minute)
	load(60, 90)
	e.primary.Exec(t, "INSERT INTO app.sig VALUES (2, '"+mark2+"')")
	waitSettled(t, e.primary.BinlogFiles(t))
	deadline := time.Now().Add(time.Minute)
	for why := e.archivedFrom(e.catalog()); why != ""; why = e.archivedFrom(e.catalog()) {
		if time.Now().After(deadline) {
			t.Fatalf("the second timeline did not catch up: %s", why)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(t)
	cp := takeCheckpoint(t, e.primary, "end")

	both := []string{"BINARC_TRUST_KEY=" + pub1 + "," + pub2, "BINARC_IDENTITY_FILE=" + ageKey, "BINARC_TARGET_PASSWORD="}
	onlyNew := []string{"BINARC_TRUST_KEY=" + pub2, "BINARC_IDENTITY_FILE=" + ageKey, "BINARC_TARGET_PASSWORD="}
	noTrust := []string{"BINARC_IDENTITY_FILE=" + ageKey}
	verifyArgs := []string{"verify", "--store", e.store, "--cluster", e.cluster}
	if out, code := e.runEnv(both, verifyArgs...); code != 0 || strings.Contains(out, "not signed") {
		t.Fatalf("verify of the signed archive with both keys (%d):\n%s", code, tail(out, 3000))
	}
	if out, code := e.runEnv(noTrust, verifyArgs...); code != 0 || strings.Contains(out, "not signed") {
		t.Errorf("verify without --trust-key of a signed archive notes unsigned objects (%d):\n%s", code, tail(out, 3000))
	}
	target := testenv.StartMariaDB(t, testenv.MariaDBOptions{ServerID: 99, NoLogBin: true})
	first := e.primary.Query(t, "SHOW BINARY LOGS")[0][0]
	restoreArgs := []string{"restore", "--store", e.store, "--cluster", e.cluster, "--from", first + ":4", "--to", "latest", "--target", "mysql://root@" + target.Addr()}
	if out, code := e.runEnv(both, restoreArgs...); code != 0 {
		t.Fatalf("restore with both keys trusted (%d):\n%s", code, tail(out, 3000))
	}
	compareChecksums(t, "restore of the signed archive across the key rotation", tableChecksums(t, target), cp.sums)
	for what, args := range map[string][]string{"verify": verifyArgs, "restore": restoreArgs} {
		if out, code := e.runEnv(onlyNew, args...); code == 0 || !strings.Contains(out, id1) || !strings.Contains(out, "not trusted") {
			t.Errorf("%s trusting only the new key (%d): want a refusal naming the old key %s:\n%s", what, code, id1, tail(out, 3000))
		}
	}

	// The forgeries.
	cat := e.catalog()
	var err error
	cat.Opener, err = crypt.LoadIdentities(ageKey)
	noErr(t, err)
	tls, err := cat.Timelines(ctx)
	if err != nil || len(tls) != 2 {
		t.Fatalf("timelines %v (%v), want two", tls, err)
	}
	ti2, err := cat.ReadTimeline(ctx, tls[1])
	noErr(t, err)
	replica := newServeReplica(t, 77)
	for _, f := range []struct {
		name, tl, marker, forged string
		sealTo                   []string
	}{
		{"plaintext segment with valid CRCs, its index untouched", tls[0], mark1, forged1, nil},
		{"segment sealed to the timeline's own age recipient", tls[1], mark2, forged2, ti2.Encryption.Recipients},
	} {
		seg, file := segmentHolding(t, cat, f.tl, f.marker)
		if f.tl == tls[0] {
			if refs, _ := cat.Files(ctx, f.tl); !refs[fileIndex(refs, file)].Indexed {
				t.Fatalf("%s: %s is not indexed", f.name, file)
			}
		}
		orig := forgeSegment(t, cat, seg, f.tl, file, f.marker, f.forged, f.sealTo)
		// Without --trust-key the forgery is read: the test can fail.
		dir := t.TempDir()
		if out, code := e.runEnv(noTrust, "binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--timeline", f.tl, "--dir", dir, file); code != 0 {
			t.Fatalf("%s: fetch without --trust-key (%d):\n%s", f.name, code, tail(out, 2000))
		}
		if got, _ := os.ReadFile(filepath.Join(dir, file)); !bytes.Contains(got, []byte(f.forged)) {
			t.Fatalf("%s: the forgery did not reach the fetched file: it proves nothing", f.name)
		}
		e.refusedBySigned(t, f.name, seg.Key, both, restoreArgs, verifyArgs,
			[]string{"binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--timeline", f.tl, "--dir", t.TempDir(), file})
		e.serveRefuses(t, f.name, seg.Key, pub1+","+pub2, ageKey, replica, f.forged)
		objPut(t, cat, seg.Key, orig)
	}

	// An unsigned object: a segment without its signature.
	seg, file := segmentHolding(t, cat, tls[0], mark1)
	orig := objGet(t, cat, seg.Key)
	body, signed := sign.SplitSigned(orig)
	if !signed {
		t.Fatalf("segment %s is not signed", seg.Key)
	}
	objPut(t, cat, seg.Key, body)
	out, code := e.runEnv(both, "binlog", "fetch", "--store", e.store, "--cluster", e.cluster, "--timeline", tls[0], "--dir", t.TempDir(), file)
	if code == 0 || !strings.Contains(out, seg.Key) || !strings.Contains(out, "is not signed, and --trust-key is given") {
		t.Errorf("fetch of an unsigned segment (%d):\n%s", code, tail(out, 2000))
	}
	// Without --trust-key verify notes it (and that its size is not the
	// index's, which counts the signature).
	if out, _ := e.runEnv(noTrust, verifyArgs...); !strings.Contains(out, "1 objects read are not signed ("+seg.Key) {
		t.Errorf("verify without --trust-key does not note the unsigned segment:\n%s", tail(out, 3000))
	}
	objPut(t, cat, seg.Key, orig)
}

func fileIndex(refs []archive.FileRef, name string) int {
	for i, r := range refs {
		if r.Name == name {
			return i
		}
	}
	return 0
}

// refusedBySigned runs each reader with trust and wants a refusal that
// names the forged object and says its signature does not match.
func (e *env) refusedBySigned(t *testing.T, what, key string, env []string, cmds ...[]string) {
	t.Helper()
	for _, args := range cmds {
		out, code := e.runEnv(env, args...)
		if code == 0 || !strings.Contains(out, key) || !strings.Contains(out, "forged or damaged") {
			t.Errorf("%s: binarc %s with --trust-key (%d): want a refusal naming %s:\n%s", what, args[0], code, key, tail(out, 3000))
		}
	}
}

// serveRefuses points the replica at binarc serve with --trust-key and
// wants serve to refuse the forged object, naming it, and the replica
// never to apply the forged row.
func (e *env) serveRefuses(t *testing.T, what, key, trust, identity string, r *testenv.MariaDB, forged string) {
	t.Helper()
	sp, port := e.startServe(t, "--trust-key", trust, "--identity", identity)
	replicateFrom(t, r, port, servePass, "MASTER_USE_GTID=slave_pos")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(sp.out.String(), key) {
		if time.Now().After(deadline) {
			st := r.SlaveStatus(t)
			t.Fatalf("%s: serve did not refuse %s; replica IO %q SQL %q; serve:\n%s", what, key, st["Last_IO_Error"], st["Last_SQL_Error"], tail(sp.out.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(sp.out.String(), "forged or damaged") {
		t.Errorf("%s: serve's refusal does not say the object is forged:\n%s", what, tail(sp.out.String(), 3000))
	}
	r.Exec(t, "STOP SLAVE", "RESET SLAVE ALL")
	sp.stop(t)
	if n := r.Query(t, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='app' AND table_name='sig'")[0][0]; n == "1" {
		if got := r.Query(t, "SELECT COUNT(*) FROM app.sig WHERE v = '"+forged+"'")[0][0]; got != "0" {
			t.Errorf("%s: the replica applied the forged row", what)
		}
	}
}

// TestSignedSnapshot: a physical snapshot taken with --sign-key and the
// binlog streamed with it restore, with --trust-key, into a data directory
// equal to the primary; a manifest stripped of its signature, or signed by
// another key, is refused by restore and verify, naming it.
func TestSignedSnapshot(t *testing.T) {
	t.Parallel()
	e := newSnapEnv(t)
	ctx := context.Background()
	key, pub, _ := e.signKey(t, "k")
	_, otherPub, _ := e.signKey(t, "other")
	p := e.start(e.streamArgs("--sign-key", key)...)
	noErr(t, writeLoad(ctx, e.primary, loadOptions{From: 0, To: 40, FlushAt: 20}))
	e.caughtUpSnapshot(t, "signed snapshot", physUser, "--sign-key", key)
	noErr(t, writeLoad(ctx, e.primary, loadOptions{From: 40, To: 80, FlushAt: 20}))
	cp := takeCheckpoint(t, e.primary, "after the snapshot")
	e.waitArchived(time.Minute)
	p.stop(t)

	srv, _ := e.restoreDatadir(t, "--to", "latest", "--trust-key", pub)
	compareChecksums(t, "restore of a signed snapshot and binlog", tableChecksums(t, srv), cp.sums)

	m := e.newest()
	mkey := e.layout().SnapshotManifestKey(m.ID)
	cat := e.catalog()
	orig := objGet(t, cat, mkey)
	body, signed := sign.SplitSigned(orig)
	if !signed {
		t.Fatalf("manifest %s is not signed", mkey)
	}
	for what, trust := range map[string]string{"unsigned manifest": pub, "manifest trusted key absent": otherPub} {
		if what == "unsigned manifest" {
			objPut(t, cat, mkey, body)
		} else {
			objPut(t, cat, mkey, orig)
		}
		dir := filepath.Join(t.TempDir(), "never")
		out, code := e.run("restore", "--store", e.store, "--cluster", e.cluster, "--datadir", dir, "--to", "latest", "--trust-key", trust)
		if code == 0 || !strings.Contains(out, mkey) {
			t.Errorf("%s: restore (%d) does not refuse naming %s:\n%s", what, code, mkey, tail(out, 3000))
		}
		out, code = e.run("verify", "--store", e.store, "--cluster", e.cluster, "--snapshot", m.ID, "--trust-key", trust)
		if code == 0 || !strings.Contains(out, mkey) {
			t.Errorf("%s: verify --snapshot (%d) does not refuse naming %s:\n%s", what, code, mkey, tail(out, 3000))
		}
	}
	objPut(t, cat, mkey, orig)
}
