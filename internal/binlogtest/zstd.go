package binlogtest

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// ZstdBomb is a few KiB of concatenated zstd frames that decode to 2 GiB
// of zeros, each frame's checksum valid: what a bucket writer could store
// to make a reader hold more than it expects.
func ZstdBomb(t testing.TB) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.EncodeAll(make([]byte, 64<<20), nil)
	return bytes.Repeat(frame, 32)
}
