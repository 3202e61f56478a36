package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/crypt"
)

// checkEncryption refuses a clear-text snapshot of a cluster whose binlog
// archive is encrypted: the snapshot would hand the bucket's owner every
// row the binlog encryption hides.
func checkEncryption(ctx context.Context, cfg Config) error {
	if cfg.Encrypt != nil {
		return nil
	}
	enc, err := archive.Catalog{Store: cfg.Store, Layout: cfg.Layout}.LatestEncryption(ctx)
	if err != nil {
		return err
	}
	if enc != nil {
		return &ConfigError{
			Problem: fmt.Sprintf("the binlog archive of cluster %q is encrypted to %v, and binarc snapshot was started without --encrypt-to", cfg.Layout.Cluster, enc.Recipients),
			Hint:    "pass --encrypt-to (or BINARC_ENCRYPT_TO) with the archive's recipients",
		}
	}
	return nil
}

// OpenData returns the zstd stream of a snapshot's data object read from
// r: r itself when the manifest says it is plain, the opened object when
// it is encrypted. An object that is not what its manifest says is
// refused, so a clear-text object cannot stand in for an encrypted one.
func OpenData(r io.Reader, m *Manifest, opener *crypt.Opener) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(len(crypt.Magic))
	sealed := crypt.IsSealed(head)
	switch {
	case sealed != (m.Encryption != nil):
		return nil, fmt.Errorf("snapshot %s: %s is %s, its manifest says it is %s: the object was replaced (%w)",
			m.ID, m.DataKey, plainOrSealed(sealed), plainOrSealed(!sealed), crypt.ErrTampered)
	case !sealed:
		return br, nil
	}
	_, pr, err := opener.Open(br, m.DataKey)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", m.ID, err)
	}
	return pr, nil
}

func plainOrSealed(sealed bool) string {
	if sealed {
		return "encrypted"
	}
	return "not encrypted"
}
