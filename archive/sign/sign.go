package sign

// Signed archives. A writer with a signing key (--sign-key) appends to each
// object it relies on a trailer: a zstd skippable frame holding the key id
// and an ed25519 signature over the object's key and the sha256 of its
// body. Being a skippable frame, it leaves a plain segment or compacted
// file readable by zstd -d; readers strip it before parsing JSON or
// opening a sealed object. A reader given trusted keys (--trust-key)
// refuses an object that is unsigned, signed by another key, or whose
// signature does not match: whoever can write to the bucket cannot forge
// what it holds without the signing key. docs/FORMAT.md describes the
// bytes.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strings"
)

const (
	// PublicKeyPrefix starts the text form of a signing public key.
	PublicKeyPrefix = "binarc-ed25519:"
	// sigFrameMagic is a zstd skippable frame's magic (0x184D2A50-5F).
	sigFrameMagic = 0x184D2A5E
	sigTag        = "BINARCSIG1"
	sigPayloadLen = 10 + keyIDLen + 64 // sigTag, key id, ed25519 signature
	// TrailerSize is the length of a signature trailer.
	TrailerSize = 8 + sigPayloadLen
	keyIDLen    = 8
	sigContext  = "binarc object signature v1\x00"
)

// Sentinel errors of a signature check; callers (verify) branch on them.
var (
	// ErrNotSigned: the object carries no signature, and trusted keys
	// were given.
	ErrNotSigned = errors.New("is not signed, and --trust-key is given")
	// ErrUntrustedKey: the object is signed by a key not among the
	// trusted ones.
	ErrUntrustedKey = errors.New("is signed by a key that is not trusted")
	// ErrForged: the signature does not match the object's key and body.
	ErrForged = errors.New("does not match its content: forged or damaged")
)

// KeyID names a signing key: the first 8 bytes of sha256 of its public key.
type KeyID [keyIDLen]byte

func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

func keyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:keyIDLen])
	return id
}

// FormatPublicKey is the text form of a signing public key.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reverses FormatPublicKey.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("trusted key %q does not start with %q: give the public key binarc keygen --sign-key printed", s, PublicKeyPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("trusted key %q is not %s followed by the base64 of a 32-byte ed25519 public key", s, PublicKeyPrefix)
	}
	return ed25519.PublicKey(raw), nil
}

// signedMessage is what a signature covers: a context string, the object's
// key (so an object cannot be moved to another key) and its body's digest.
func signedMessage(key string, digest []byte) []byte {
	m := make([]byte, 0, len(sigContext)+len(key)+1+len(digest))
	m = append(m, sigContext...)
	m = append(m, key...)
	m = append(m, 0)
	return append(m, digest...)
}

// Signer signs objects with one ed25519 key. A nil *Signer signs nothing:
// its methods return bodies unchanged.
type Signer struct {
	priv ed25519.PrivateKey
	id   KeyID
}

// NewSigner signs with priv.
func NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{priv: priv, id: keyIDOf(priv.Public().(ed25519.PublicKey))}
}

// KeyID is the id of the signer's key.
func (s *Signer) KeyID() KeyID { return s.id }

// PublicKey is the signer's public key in text form, what readers trust.
func (s *Signer) PublicKey() string { return FormatPublicKey(s.priv.Public().(ed25519.PublicKey)) }

// TrailerFor returns the trailer for an object stored at key whose body
// has the sha256 digest; nil for a nil signer.
func (s *Signer) TrailerFor(key string, digest []byte) []byte {
	if s == nil {
		return nil
	}
	sig := ed25519.Sign(s.priv, signedMessage(key, digest))
	t := make([]byte, 0, TrailerSize)
	t = binary.LittleEndian.AppendUint32(t, sigFrameMagic)
	t = binary.LittleEndian.AppendUint32(t, uint32(sigPayloadLen))
	t = append(t, sigTag...)
	t = append(t, s.id[:]...)
	return append(t, sig...)
}

// Sign returns body followed by its trailer (body itself for a nil
// signer). ed25519 is deterministic: the same body signs to the same
// bytes, so a conditional put retried after a lost answer still compares.
func (s *Signer) Sign(key string, body []byte) []byte {
	if s == nil {
		return body
	}
	sum := sha256.Sum256(body)
	return append(append(make([]byte, 0, len(body)+TrailerSize), body...), s.TrailerFor(key, sum[:])...)
}

// SignChunks returns chunks with the trailer appended as one more chunk.
func (s *Signer) SignChunks(key string, c [][]byte) [][]byte {
	if s == nil {
		return c
	}
	h := sha256.New()
	for _, b := range c {
		h.Write(b)
	}
	return append(c, s.TrailerFor(key, h.Sum(nil)))
}

// LoadSigner reads a signing key file: a PKCS#8 PEM ed25519 private key, as
// binarc keygen --sign-key or openssl genpkey -algorithm ed25519 write.
func LoadSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s is not a PEM \"PRIVATE KEY\" (PKCS#8): create one with binarc keygen --sign-key FILE or openssl genpkey -algorithm ed25519", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s is a %T, not ed25519: create one with binarc keygen --sign-key FILE", path, k)
	}
	return NewSigner(priv), nil
}

// GenerateSigner creates a new signing key and writes it to path (mode
// 0600), refusing to replace an existing file: that would lose the key
// the archive is signed with.
func GenerateSigner(path string) (*Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write signing key: %w (binarc never overwrites a key file; choose another name)", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write signing key %s: %w", path, err)
	}
	return NewSigner(priv), nil
}

// trailer is a parsed signature trailer.
type trailer struct {
	id  KeyID
	sig []byte
}

// parseTrailer reads a trailer from exactly TrailerSize bytes.
func parseTrailer(b []byte) (trailer, bool) {
	if len(b) != TrailerSize || binary.LittleEndian.Uint32(b) != sigFrameMagic ||
		binary.LittleEndian.Uint32(b[4:]) != uint32(sigPayloadLen) || string(b[8:8+len(sigTag)]) != sigTag {
		return trailer{}, false
	}
	var t trailer
	copy(t.id[:], b[8+len(sigTag):])
	t.sig = b[8+len(sigTag)+keyIDLen:]
	return t, true
}

// SplitSigned separates a stored object into its body and whether it
// carries a trailer; it checks nothing.
func SplitSigned(stored []byte) (body []byte, signed bool) {
	if len(stored) < TrailerSize {
		return stored, false
	}
	if _, ok := parseTrailer(stored[len(stored)-TrailerSize:]); !ok {
		return stored, false
	}
	return stored[:len(stored)-TrailerSize], true
}

// Trust is the set of public keys a reader accepts signatures from, given
// by the operator (--trust-key), never read from the bucket. A nil *Trust
// checks nothing: it strips trailers.
type Trust struct {
	keys map[KeyID]ed25519.PublicKey
	// note, in a Trust without keys, is told of every unsigned object
	// read, which is not refused (binarc verify without --trust-key).
	note func(key string)
}

// NoteUnsigned returns a Trust that refuses nothing and calls note (from
// any goroutine) with the key of each object read that is not signed.
func NoteUnsigned(note func(key string)) *Trust { return &Trust{note: note} }

// Enforcing tells whether t refuses objects: it holds trusted keys.
func (t *Trust) Enforcing() bool { return t != nil && t.note == nil }

// ParseTrust reads trusted public keys in text form; none gives nil.
func ParseTrust(keys []string) (*Trust, error) {
	t := &Trust{keys: map[KeyID]ed25519.PublicKey{}}
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			continue
		}
		pub, err := ParsePublicKey(k)
		if err != nil {
			return nil, err
		}
		t.keys[keyIDOf(pub)] = pub
	}
	if len(t.keys) == 0 {
		return nil, nil
	}
	return t, nil
}

// KeyIDs lists the trusted keys' ids, sorted.
func (t *Trust) KeyIDs() []string {
	var ids []string
	if t != nil {
		for id := range t.keys {
			ids = append(ids, id.String())
		}
	}
	sort.Strings(ids)
	return ids
}

// Check returns the body of an object read from key. Without trust it
// strips a trailer if there is one. With trust it refuses an object that
// is unsigned (ErrNotSigned), signed by an untrusted key
// (ErrUntrustedKey), or whose signature does not match (ErrForged).
func (t *Trust) Check(key string, stored []byte) ([]byte, error) {
	body, signed := SplitSigned(stored)
	if !t.Enforcing() {
		if t != nil && !signed {
			t.note(key)
		}
		return body, nil
	}
	if !signed {
		return nil, t.notSigned(key)
	}
	tr, _ := parseTrailer(stored[len(body):])
	sum := sha256.Sum256(body)
	return body, t.verify(key, tr, sum[:])
}

func (t *Trust) notSigned(key string) error {
	return fmt.Errorf("object %s %w: it was written without --sign-key, or put in the bucket by someone else (give --sign-key to binarc stream and binarc snapshot, or read the archive without --trust-key)", key, ErrNotSigned)
}

func (t *Trust) verify(key string, tr trailer, digest []byte) error {
	pub, ok := t.keys[tr.id]
	if !ok {
		return fmt.Errorf("object %s %w: key id %s (trusted: %s); add its public key with --trust-key if it is yours (key rotation)", key, ErrUntrustedKey, tr.id, strings.Join(t.KeyIDs(), ", "))
	}
	if !ed25519.Verify(pub, signedMessage(key, digest), tr.sig) {
		return fmt.Errorf("object %s: its signature by key %s %w", key, tr.id, ErrForged)
	}
	return nil
}

// Reader returns the body of an object streamed from r: r without its
// trailer. With trust, reading past the body's end fails unless the
// signature holds; the bytes before it are released unchecked, so a
// caller that must not use unchecked bytes checks them piece by piece
// too (compacted files: per segment).
func (t *Trust) Reader(key string, r io.Reader) io.Reader {
	tr := &trailerReader{t: t, key: key, r: r}
	if t.Enforcing() {
		tr.h = sha256.New()
	}
	return tr
}

// trailerReader passes on all but the last TrailerSize bytes of r, and at
// the end checks them.
type trailerReader struct {
	t    *Trust
	key  string
	r    io.Reader
	h    hash.Hash
	hold []byte // bytes read, not yet passed on
	done bool   // r has ended: hold is all body, and end says what follows
	end  func() error
	buf  []byte
}

func (tr *trailerReader) Read(p []byte) (int, error) {
	for {
		keep := TrailerSize
		if tr.done {
			keep = 0
		}
		if len(tr.hold) > keep {
			n := copy(p, tr.hold[:len(tr.hold)-keep])
			if tr.h != nil {
				tr.h.Write(p[:n])
			}
			tr.hold = tr.hold[n:]
			return n, nil
		}
		if tr.done {
			return 0, tr.end()
		}
		if tr.buf == nil {
			tr.buf = make([]byte, 32<<10)
		}
		n, err := tr.r.Read(tr.buf)
		tr.hold = append(tr.hold, tr.buf[:n]...)
		switch {
		case err == io.EOF:
			tr.done = true
			tr.end = tr.finish()
		case err != nil:
			tr.done, tr.hold = true, nil
			tr.end = func() error { return err }
		}
	}
}

// finish decides, once r has ended, what its last bytes are: a trailer
// (dropped, and checked with trust once the body before it is passed on
// and hashed), or the end of an unsigned body (passed on without trust,
// refused with it).
func (tr *trailerReader) finish() func() error {
	var t trailer
	signed := false
	if len(tr.hold) >= TrailerSize {
		t, signed = parseTrailer(tr.hold[len(tr.hold)-TrailerSize:])
	}
	switch {
	case !signed && tr.t.Enforcing():
		tr.hold = nil
		err := tr.t.notSigned(tr.key)
		return func() error { return err }
	case !signed && tr.t != nil:
		tr.t.note(tr.key)
	case signed:
		tr.hold = tr.hold[:len(tr.hold)-TrailerSize]
	}
	if !signed || !tr.t.Enforcing() {
		return func() error { return io.EOF }
	}
	return func() error {
		if err := tr.t.verify(tr.key, t, tr.h.Sum(nil)); err != nil {
			return err
		}
		return io.EOF
	}
}

// signingReader passes r on and, at its end, appends the signature of
// what it passed (a compacted object, signed while it is streamed).
type signingReader struct {
	s     *Signer
	key   string
	r     io.Reader
	h     hash.Hash
	trail []byte
	ended bool
}

// SignedReader returns r followed by its signature under key; r itself
// for a nil signer.
func (s *Signer) SignedReader(key string, r io.Reader) io.Reader {
	if s == nil {
		return r
	}
	return &signingReader{s: s, key: key, r: r, h: sha256.New()}
}

func (sr *signingReader) Read(b []byte) (int, error) {
	if !sr.ended {
		n, err := sr.r.Read(b)
		sr.h.Write(b[:n])
		if err != io.EOF {
			return n, err
		}
		sr.ended = true
		sr.trail = sr.s.TrailerFor(sr.key, sr.h.Sum(nil))
		if n > 0 {
			return n, nil
		}
	}
	if len(sr.trail) == 0 {
		return 0, io.EOF
	}
	n := copy(b, sr.trail)
	sr.trail = sr.trail[n:]
	return n, nil
}
