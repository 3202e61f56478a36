// Package crypt seals binarc's data objects with age (age-encryption.org/v1)
// before they leave the host, and opens them on the way back. It knows
// nothing of object stores or of the archive's layout: callers hand it bytes
// or streams and the name the object is stored under.
//
// A sealed object is
//
//	"binarc-sealed-v1\n"          magic line
//	<n: 4 bytes, big endian>      length of the clear header
//	<n bytes of JSON>             clear header: name, recipients, public metadata
//	<age ciphertext>              of SHA-256(everything above) || payload
//
// The clear header lets a writer that holds only public keys (binarc stream)
// read back what it needs to resume (offsets, times, GTIDs); it holds nothing
// that the object's name does not already reveal. age authenticates the
// ciphertext but not where it is stored, so the header names the object
// key, and the digest at the start of the plaintext authenticates the header:
// an object copied or swapped to another key, or with its header edited, is
// refused on open by anyone holding an identity.
package crypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"filippo.io/age"
)

// Magic starts every sealed object. A zstd object starts with 28 b5 2f fd,
// so the two never look alike.
const Magic = "binarc-sealed-v1\n"

const maxHeader = 1 << 16

// Scheme is the only encryption scheme binarc writes.
const Scheme = "age"

// Header is the clear-text part of a sealed object.
type Header struct {
	// Name is the object key the object was sealed for.
	Name string `json:"name"`
	// Recipients are the public keys it is encrypted to.
	Recipients []string `json:"recipients"`
	// Meta is the caller's public metadata (offsets, times, GTIDs).
	Meta json.RawMessage `json:"meta,omitempty"`
}

// Errors callers branch on.
var (
	// ErrNoIdentity: the object is sealed and no identity was given, or
	// none of the given ones is among its recipients.
	ErrNoIdentity = errors.New("no identity for this encrypted object")
	// ErrTampered: the object is not what was sealed under its name.
	ErrTampered = errors.New("encrypted object is corrupt or was altered")
)

// IsSealed tells whether data (or its first bytes) is a sealed object.
func IsSealed(prefix []byte) bool { return bytes.HasPrefix(prefix, []byte(Magic)) }

// Sealer encrypts to a fixed set of recipients.
type Sealer struct {
	recipients []age.Recipient
	public     []string
}

// NewSealer parses recipients: age public keys ("age1…", or the
// post-quantum "age1pq1…"). Order and duplicates do not matter.
func NewSealer(recipients []string) (*Sealer, error) {
	s := &Sealer{}
	seen := map[string]bool{}
	for _, r := range recipients {
		r = strings.TrimSpace(r)
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		parsed, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil || len(parsed) != 1 {
			return nil, fmt.Errorf("--encrypt-to %q is not an age public key (age1…; make one with age-keygen and pass its public key)", r)
		}
		s.recipients = append(s.recipients, parsed[0])
		s.public = append(s.public, r)
	}
	if len(s.recipients) == 0 {
		return nil, errors.New("--encrypt-to: no recipient given")
	}
	sort.Strings(s.public)
	return s, nil
}

// Recipients returns the public keys, sorted.
func (s *Sealer) Recipients() []string { return append([]string(nil), s.public...) }

// SameRecipients tells whether two recipient lists name the same keys.
func SameRecipients(a, b []string) bool {
	set := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, r := range l {
			m[strings.TrimSpace(r)] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for r := range sa {
		if !sb[r] {
			return false
		}
	}
	return true
}

// Seal encrypts payload as the object name, with meta (marshalled to JSON,
// nil for none) in the clear header.
func (s *Sealer) Seal(name string, meta any, payload []byte) ([]byte, error) {
	w := &appendWriter{b: make([]byte, 0, SealedSize(len(payload)))}
	sw, err := s.SealStream(w, name, meta)
	if err != nil {
		return nil, err
	}
	if _, err := sw.Write(payload); err != nil {
		return nil, err
	}
	if err := sw.Close(); err != nil {
		return nil, err
	}
	return w.b, nil
}

// SealedSize bounds the size of a sealed object of n payload bytes with
// a small clear header: age adds 16 bytes per 64 KiB chunk and its header
// (about 200 bytes a recipient).
func SealedSize(n int) int { return n + (n/(64<<10)+2)*16 + 4096 }

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// SealStream returns a writer that encrypts what is written to it into
// dst, as the object name. Close finishes the object (it does not close
// dst); an object not closed is truncated and will not open.
func (s *Sealer) SealStream(dst io.Writer, name string, meta any) (io.WriteCloser, error) {
	h := Header{Name: name, Recipients: s.public}
	if meta != nil {
		m, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("seal %s: %w", name, err)
		}
		h.Meta = m
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	if len(hb) > maxHeader {
		return nil, fmt.Errorf("seal %s: clear header of %d bytes is too large", name, len(hb))
	}
	prefix := clearPrefix(hb)
	if _, err := dst.Write(prefix); err != nil {
		return nil, err
	}
	w, err := age.Encrypt(dst, s.recipients...)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	sum := sha256.Sum256(prefix)
	if _, err := w.Write(sum[:]); err != nil {
		return nil, err
	}
	return w, nil
}

func clearPrefix(header []byte) []byte {
	p := make([]byte, 0, len(Magic)+4+len(header))
	p = append(p, Magic...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(header)))
	return append(p, header...)
}

// ReadHeader reads the clear header of a sealed object from r, leaving r
// at the start of the ciphertext. It does not authenticate anything:
// writers that hold no identity use it for metadata they would otherwise
// read from a clear-text index.
func ReadHeader(r io.Reader) (*Header, []byte, error) {
	fixed := make([]byte, len(Magic)+4)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return nil, nil, fmt.Errorf("%w: short clear header: %v", ErrTampered, err)
	}
	if !IsSealed(fixed) {
		return nil, nil, fmt.Errorf("%w: not a binarc sealed object", ErrTampered)
	}
	n := binary.BigEndian.Uint32(fixed[len(Magic):])
	if n > maxHeader {
		return nil, nil, fmt.Errorf("%w: clear header of %d bytes", ErrTampered, n)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, fmt.Errorf("%w: short clear header: %v", ErrTampered, err)
	}
	var h Header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, nil, fmt.Errorf("%w: clear header is not JSON: %v", ErrTampered, err)
	}
	return &h, append(fixed, hb...), nil
}

// Opener decrypts with a set of identities.
type Opener struct {
	identities []age.Identity
	path       string
	public     []string // the public keys of the identities, where known
}

// LoadIdentities reads an age identity file (age-keygen's output: one
// AGE-SECRET-KEY-… per line, # comments).
func LoadIdentities(path string) (*Opener, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--identity %s: %w", path, err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("--identity %s: not an age identity file (make one with age-keygen): %w", path, err)
	}
	return newOpener(path, ids), nil
}

// NewOpener opens with identities given in memory (tests, callers that
// keep keys elsewhere).
func NewOpener(ids ...age.Identity) *Opener { return newOpener("", ids) }

func newOpener(path string, ids []age.Identity) *Opener {
	o := &Opener{identities: ids, path: path}
	for _, id := range ids {
		switch k := id.(type) {
		case *age.X25519Identity:
			o.public = append(o.public, k.Recipient().String())
		case *age.HybridIdentity:
			o.public = append(o.public, k.Recipient().String())
		}
	}
	return o
}

// Open checks and decrypts a sealed object read from r, stored as name,
// and returns its header and a reader of its payload. Errors from the
// reader mean the ciphertext is corrupt or truncated (ErrTampered); the
// payload is not whole until the reader returned io.EOF. A nil Opener
// refuses every object with ErrNoIdentity.
func (o *Opener) Open(r io.Reader, name string) (*Header, io.Reader, error) {
	h, prefix, err := ReadHeader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	if h.Name != name {
		return h, nil, fmt.Errorf("open %s: %w: it was sealed as %s (objects swapped or copied in the bucket)", name, ErrTampered, h.Name)
	}
	if o == nil || len(o.identities) == 0 {
		return h, nil, fmt.Errorf("open %s: %w: it is encrypted to %s; pass --identity FILE (or BINARC_IDENTITY_FILE) with the secret key of one of them", name, ErrNoIdentity, strings.Join(h.Recipients, ", "))
	}
	pr, err := age.Decrypt(r, o.identities...)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) && o.holdsOneOf(h.Recipients) {
		return h, nil, fmt.Errorf("open %s: %w: its age header does not open with %s, which holds one of its recipients' keys", name, ErrTampered, o.source())
	}
	if errors.As(err, &nomatch) {
		return h, nil, fmt.Errorf("open %s: %w: it is encrypted to %s, and %s holds %s; pass the identity of one of the recipients", name, ErrNoIdentity, strings.Join(h.Recipients, ", "), o.source(), o.holds())
	}
	if err != nil {
		return h, nil, fmt.Errorf("open %s: %w: %v", name, ErrTampered, err)
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(pr, sum); err != nil {
		return h, nil, fmt.Errorf("open %s: %w: %v", name, ErrTampered, err)
	}
	if want := sha256.Sum256(prefix); !bytes.Equal(sum, want[:]) {
		return h, nil, fmt.Errorf("open %s: %w: its clear header was changed", name, ErrTampered)
	}
	return h, &payloadReader{r: pr, name: name}, nil
}

// OpenBytes is Open of an object held in memory, returning the whole
// payload.
func (o *Opener) OpenBytes(data []byte, name string) (*Header, []byte, error) {
	h, r, err := o.Open(bytes.NewReader(data), name)
	if err != nil {
		return h, nil, err
	}
	payload, err := io.ReadAll(r)
	if err != nil {
		return h, nil, err
	}
	return h, payload, nil
}

func (o *Opener) source() string {
	if o.path != "" {
		return "--identity " + o.path
	}
	return "the identity given"
}

func (o *Opener) holdsOneOf(recipients []string) bool {
	for _, p := range o.public {
		for _, r := range recipients {
			if p == r {
				return true
			}
		}
	}
	return false
}

func (o *Opener) holds() string {
	if len(o.public) == 0 {
		return "other keys"
	}
	return "the keys of " + strings.Join(o.public, ", ")
}

// payloadReader names the object in decryption errors.
type payloadReader struct {
	r    io.Reader
	name string
}

func (p *payloadReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("open %s: %w: %v", p.name, ErrTampered, err)
	}
	return n, err
}
