package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/binarc/binarc/archive/crypt"
	"github.com/klauspost/compress/zstd"
)

func newSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := GenerateSigner(filepath.Join(t.TempDir(), "sign.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func trustOf(t *testing.T, ss ...*Signer) *Trust {
	t.Helper()
	var keys []string
	for _, s := range ss {
		keys = append(keys, s.PublicKey())
	}
	tr, err := ParseTrust(keys)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const testKey = "c/binlog/000001-20261206T000000Z/mysql-bin.000001/00000000000000000000-00000000000000000100.zst"

func TestSignCheck(t *testing.T) {
	s, other := newSigner(t), newSigner(t)
	body := []byte(`{"version":2}` + "\n")
	signed := s.Sign(testKey, body)
	if len(signed) != len(body)+TrailerSize {
		t.Fatalf("signed object is %d bytes, want %d", len(signed), len(body)+TrailerSize)
	}
	if !bytes.Equal(s.Sign(testKey, body), signed) {
		t.Fatal("signing the same body twice gave different bytes: conditional puts would conflict")
	}
	got, err := trustOf(t, s).Check(testKey, signed)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Check = %q, %v; want the body", got, err)
	}
	if got, err := (*Trust)(nil).Check(testKey, signed); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Check without trust = %q, %v; want the body, trailer stripped", got, err)
	}
	if got, err := (*Trust)(nil).Check(testKey, body); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Check without trust of an unsigned object = %q, %v", got, err)
	}
	flipped := append([]byte(nil), signed...)
	flipped[3] ^= 1
	cases := []struct {
		name   string
		trust  *Trust
		key    string
		stored []byte
		want   error
		words  string
	}{
		{"unsigned", trustOf(t, s), testKey, body, ErrNotSigned, "is not signed, and --trust-key is given"},
		{"untrusted key", trustOf(t, other), testKey, signed, ErrUntrustedKey, s.KeyID().String()},
		{"body changed", trustOf(t, s), testKey, flipped, ErrForged, "forged or damaged"},
		{"moved to another key", trustOf(t, s), testKey + "x", signed, ErrForged, testKey + "x"},
		{"signed by another, both trusted, other's trailer", trustOf(t, s, other), testKey, append(append([]byte(nil), body...), other.Sign("k", body)[len(body):]...), ErrForged, "forged"},
	}
	for _, c := range cases {
		_, err := c.trust.Check(c.key, c.stored)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.words) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: Check err = %v; want %v naming the object and %q", c.name, err, c.want, c.words)
		}
	}
	if _, err := trustOf(t, s, other).Check(testKey, other.Sign(testKey, body)); err != nil {
		t.Errorf("an object signed by the second of two trusted keys (rotation): %v", err)
	}
}

func TestSignedSegmentDecodesWithZstd(t *testing.T) {
	s := newSigner(t)
	plain := bytes.Repeat([]byte("binlog events "), 1000)
	enc, _ := zstd.NewWriter(nil)
	z := enc.EncodeAll(plain, nil)
	signed := s.Sign(testKey, z)
	// klauspost, as binarc reads it (archive.DecodeSegment's decoder).
	d1, _ := zstd.NewReader(nil)
	got, err := d1.DecodeAll(signed, nil)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decoding a signed segment: %v", err)
	}
	// Two signed segments concatenated, as a compacted file holds them.
	two := append(append([]byte(nil), signed...), signed...)
	dec, _ := zstd.NewReader(bytes.NewReader(two))
	all, err := io.ReadAll(dec)
	if err != nil || !bytes.Equal(all, append(append([]byte(nil), plain...), plain...)) {
		t.Fatalf("klauspost stream decoder over two signed segments: %v", err)
	}
	// The zstd program.
	if path, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command(path, "-d", "-c")
		cmd.Stdin = bytes.NewReader(two)
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, all) {
			t.Fatalf("zstd -d of two signed segments: %v", err)
		}
	} else {
		t.Log("zstd program not found: only klauspost's decoder checked")
	}
}

func TestSignedSealedObject(t *testing.T) {
	s := newSigner(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypt.NewSealer([]string{id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.Seal(testKey, nil, []byte("zstd bytes"))
	if err != nil {
		t.Fatal(err)
	}
	stored := s.Sign(testKey, sealed)
	body, err := trustOf(t, s).Check(testKey, stored)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := crypt.NewOpener(id).OpenBytes(body, testKey); err != nil || string(got) != "zstd bytes" {
		t.Fatalf("open the body of a signed sealed object: %q, %v", got, err)
	}
	// A forged object sealed to the same recipient (its public key is in
	// the bucket) is refused by the signature, not by age.
	forged, _ := sealer.Seal(testKey, nil, []byte("forged"))
	if _, err := trustOf(t, s).Check(testKey, forged); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("forged sealed object: %v", err)
	}
}

func TestTrustReader(t *testing.T) {
	s := newSigner(t)
	body := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 30000) // several reads
	read := func(tr *Trust, stored []byte) ([]byte, error) {
		cut := min(7, len(stored))
		return io.ReadAll(tr.Reader(testKey, io.MultiReader(bytes.NewReader(stored[:cut]), bytes.NewReader(stored[cut:]))))
	}
	for _, c := range []struct {
		name   string
		trust  *Trust
		stored []byte
		want   error
	}{
		{"signed, trusted", trustOf(t, s), s.Sign(testKey, body), nil},
		{"signed, no trust", nil, s.Sign(testKey, body), nil},
		{"unsigned, no trust", nil, body, nil},
		{"unsigned, trusted", trustOf(t, s), body, ErrNotSigned},
		{"forged", trustOf(t, s), append(append([]byte{9}, body[1:]...), s.Sign(testKey, body)[len(body):]...), ErrForged},
		{"short unsigned", nil, []byte("abc"), nil},
	} {
		got, err := read(c.trust, c.stored)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		if want, _ := SplitSigned(c.stored); err == nil && !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes, want the %d of the body", c.name, len(got), len(want))
		}
	}
}

func TestSignKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.pem")
	s, err := GenerateSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := GenerateSigner(path); err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("second keygen to the same file: %v", err)
	}
	loaded, err := LoadSigner(path)
	if err != nil || loaded.PublicKey() != s.PublicKey() {
		t.Fatalf("LoadSigner: %v", err)
	}
	pub, err := ParsePublicKey(s.PublicKey())
	if err != nil || keyIDOf(pub) != s.KeyID() {
		t.Fatalf("ParsePublicKey(%s): %v", s.PublicKey(), err)
	}
	if _, err := ParseTrust([]string{"age1abc"}); err == nil || !strings.Contains(err.Error(), PublicKeyPrefix) {
		t.Errorf("ParseTrust of a non-key: %v", err)
	}
	if tr, err := ParseTrust([]string{"", " "}); tr != nil || err != nil {
		t.Errorf("ParseTrust of nothing = %v, %v; want nil", tr, err)
	}
	os.WriteFile(filepath.Join(dir, "bad.pem"), []byte("nonsense"), 0o600)
	if _, err := LoadSigner(filepath.Join(dir, "bad.pem")); err == nil || !strings.Contains(err.Error(), "keygen") {
		t.Errorf("LoadSigner of a non-key: %v", err)
	}
	// A key written by OpenSSL, as the docs offer.
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found")
	}
	ossl := filepath.Join(dir, "ossl.pem")
	if out, err := exec.Command(openssl, "genpkey", "-algorithm", "ed25519", "-out", ossl).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v: %s", err, out)
	}
	os2, err := LoadSigner(ossl)
	if err != nil {
		t.Fatalf("LoadSigner of an openssl key: %v", err)
	}
	der, err := exec.Command(openssl, "pkey", "-in", ossl, "-pubout", "-outform", "DER").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := FormatPublicKey(ed25519.PublicKey(der[len(der)-ed25519.PublicKeySize:]))
	if os2.PublicKey() != want {
		t.Errorf("public key of the openssl key = %s, openssl says %s", os2.PublicKey(), want)
	}
	// A trailer checked by hand with OpenSSL, as docs/FORMAT.md says.
	body := []byte("a segment's bytes")
	signed := os2.Sign(testKey, body)
	sum := sha256.Sum256(body)
	msg := append(append(append([]byte("binarc object signature v1\x00"), testKey...), 0), sum[:]...)
	files := map[string][]byte{"msg": msg, "sig": signed[len(signed)-64:]}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(openssl, "pkey", "-in", ossl, "-pubout", "-out", filepath.Join(dir, "pub.pem")).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey -pubout: %v: %s", err, out)
	}
	verify := func() ([]byte, error) {
		return exec.Command(openssl, "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", filepath.Join(dir, "pub.pem"),
			"-sigfile", filepath.Join(dir, "sig"), "-in", filepath.Join(dir, "msg")).CombinedOutput()
	}
	if out, err := verify(); err != nil {
		t.Fatalf("openssl pkeyutl -verify of a trailer's signature: %v: %s", err, out)
	}
	msg[len(msg)-1] ^= 1
	os.WriteFile(filepath.Join(dir, "msg"), msg, 0o600)
	if _, err := verify(); err == nil {
		t.Fatal("openssl accepted the signature over another digest: the check proves nothing")
	}
}

// BenchmarkSignSegment is the writer's cost per segment: a SHA-256 of the
// stored bytes and one ed25519 signature (64 KiB: a 256 KiB segment of
// binlog, compressed about 4:1).
func BenchmarkSignSegment(b *testing.B) {
	s, err := GenerateSigner(filepath.Join(b.TempDir(), "k.pem"))
	if err != nil {
		b.Fatal(err)
	}
	c := [][]byte{bytes.Repeat([]byte{7}, 64<<10)}
	b.SetBytes(64 << 10)
	for b.Loop() {
		s.SignChunks(testKey, c[:1:1])
	}
}

// BenchmarkCheckSegment is the reader's: a SHA-256 and one verification.
func BenchmarkCheckSegment(b *testing.B) {
	s, err := GenerateSigner(filepath.Join(b.TempDir(), "k.pem"))
	if err != nil {
		b.Fatal(err)
	}
	tr, _ := ParseTrust([]string{s.PublicKey()})
	stored := s.Sign(testKey, bytes.Repeat([]byte{7}, 64<<10))
	b.SetBytes(64 << 10)
	for b.Loop() {
		if _, err := tr.Check(testKey, stored); err != nil {
			b.Fatal(err)
		}
	}
}
