package crypt

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func newKey(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sealer(t testing.TB, ids ...*age.X25519Identity) *Sealer {
	t.Helper()
	var rs []string
	for _, id := range ids {
		rs = append(rs, id.Recipient().String())
	}
	s, err := NewSealer(rs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type meta struct {
	Start uint64 `json:"start"`
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := newKey(t)
	payload := make([]byte, 200<<10)
	_, _ = rand.Read(payload)
	sealed, err := sealer(t, key).Seal("c/binlog/a/f.000001/x.zst", meta{Start: 42}, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(sealed) || bytes.Contains(sealed, payload[:64]) {
		t.Fatal("sealed object is not sealed, or holds the payload in clear")
	}
	h, got, err := NewOpener(key).OpenBytes(sealed, "c/binlog/a/f.000001/x.zst")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload differs after a round trip")
	}
	if string(h.Meta) != `{"start":42}` || len(h.Recipients) != 1 || h.Recipients[0] != key.Recipient().String() {
		t.Fatalf("header = %+v", h)
	}
	// A writer without the identity reads the clear header alone.
	h2, _, err := ReadHeader(bytes.NewReader(sealed))
	if err != nil || string(h2.Meta) != `{"start":42}` {
		t.Fatalf("ReadHeader = %+v, %v", h2, err)
	}
}

func TestEitherRecipientOpens(t *testing.T) {
	daily, recovery := newKey(t), newKey(t)
	sealed, err := sealer(t, daily, recovery).Seal("k", nil, []byte("rows"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*age.X25519Identity{daily, recovery} {
		if _, got, err := NewOpener(id).OpenBytes(sealed, "k"); err != nil || string(got) != "rows" {
			t.Fatalf("open with %s: %q, %v", id.Recipient(), got, err)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	key, other := newKey(t), newKey(t)
	payload := bytes.Repeat([]byte("secret row "), 20000)
	sealed, err := sealer(t, key).Seal("tl/f/0-10.zst", nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	headerEnd := len(Magic) + 4 + 20 // inside the clear JSON
	cases := []struct {
		name   string
		opener *Opener
		data   []byte
		key    string
		want   error
		says   string
	}{
		{"missing identity", nil, sealed, "tl/f/0-10.zst", ErrNoIdentity, key.Recipient().String()},
		{"wrong identity", NewOpener(other), sealed, "tl/f/0-10.zst", ErrNoIdentity, other.Recipient().String()},
		{"flipped byte in the ciphertext", NewOpener(key), flip(len(sealed) - 100), "tl/f/0-10.zst", ErrTampered, "corrupt"},
		{"flipped byte in the clear header", NewOpener(key), flip(headerEnd), "tl/f/0-10.zst", ErrTampered, ""},
		{"truncated", NewOpener(key), sealed[:len(sealed)-70000], "tl/f/0-10.zst", ErrTampered, ""},
		{"truncated at a chunk boundary", NewOpener(key), sealed[:len(sealed)-((len(payload)+32)%(64<<10)+16)], "tl/f/0-10.zst", ErrTampered, ""},
		{"stored under another name", NewOpener(key), sealed, "tl/f/10-20.zst", ErrTampered, "sealed as tl/f/0-10.zst"},
		{"not sealed at all", NewOpener(key), []byte("plain"), "tl/f/0-10.zst", ErrTampered, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, got, err := c.opener.OpenBytes(c.data, c.key)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("error %q does not name %q and the object", err, c.says)
			}
			if got != nil {
				t.Fatal("returned a payload with the error")
			}
		})
	}
}

func TestStreamedSealOpens(t *testing.T) {
	key := newKey(t)
	var buf bytes.Buffer
	w, err := sealer(t, key).SealStream(&buf, "snap/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		_, _ = w.Write(bytes.Repeat([]byte{byte(i)}, 10000))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, r, err := NewOpener(key).Open(&buf, "snap/data")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != 1000000 {
		t.Fatalf("read %d, %v", n, err)
	}
}

func TestSealerParsesRecipients(t *testing.T) {
	a, b := newKey(t), newKey(t)
	s, err := NewSealer([]string{b.Recipient().String(), " " + a.Recipient().String(), b.Recipient().String(), ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Recipients()) != 2 || !SameRecipients(s.Recipients(), []string{a.Recipient().String(), b.Recipient().String()}) {
		t.Fatalf("recipients = %v", s.Recipients())
	}
	if SameRecipients(s.Recipients(), []string{a.Recipient().String()}) {
		t.Fatal("SameRecipients of a subset")
	}
	if _, err := NewSealer([]string{"AGE-SECRET-KEY-1XYZ"}); err == nil || !strings.Contains(err.Error(), "not an age public key") {
		t.Fatalf("a secret key as recipient: %v", err)
	}
	if _, err := NewSealer(nil); err == nil {
		t.Fatal("no recipients accepted")
	}
}

func TestLoadIdentities(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(path, []byte("# created by age-keygen\n# public key: "+key.Recipient().String()+"\n"+key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := sealer(t, key).Seal("k", nil, []byte("x"))
	if _, got, err := o.OpenBytes(sealed, "k"); err != nil || string(got) != "x" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := LoadIdentities(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "--identity") {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	_ = os.WriteFile(bad, []byte(key.Recipient().String()+"\n"), 0o600)
	if _, err := LoadIdentities(bad); err == nil || !strings.Contains(err.Error(), "age-keygen") {
		t.Fatalf("public key as identity: %v", err)
	}
}

// BenchmarkReseal measures the compaction option binarc does not take:
// decrypting each segment and encrypting the whole file again (no
// recompression). binarc keeps the sealed segments as they are instead.
func BenchmarkReseal(b *testing.B) {
	key := newKey(b)
	s := sealer(b, key)
	payload := make([]byte, 16<<20)
	_, _ = rand.Read(payload)
	sealed, _ := s.Seal("k", nil, payload)
	o := NewOpener(key)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		_, p, err := o.OpenBytes(sealed, "k")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Seal("k2", nil, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal is the cost encryption adds to each stored segment.
func BenchmarkSeal(b *testing.B) {
	s := sealer(b, newKey(b), newKey(b))
	payload := make([]byte, 4<<20)
	_, _ = rand.Read(payload)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := s.Seal("k", nil, payload); err != nil {
			b.Fatal(err)
		}
	}
}
