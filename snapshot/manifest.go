// Package snapshot takes full backups of a MySQL or MariaDB server the way
// operators take them by hand: on a replica, with its SQL thread stopped and
// its IO thread running, at exact coordinates on the primary's binlog. The
// backup tool's output (mariabackup's xbstream, or mariadb-dump's SQL) is
// compressed with zstd and streamed into the store without a local copy; a
// manifest, written last, makes a snapshot complete.
//
// It must not restore (package restore) nor verify a stored snapshot
// (package verify); it lists snapshots and reads manifests for them.
package snapshot

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
)

// ManifestVersion is the newest manifest format this binarc reads and
// writes: 2 for an encrypted snapshot (Encryption set), 1 otherwise.
const ManifestVersion = 2

// manifestVersionPlain is the version of a manifest without encryption.
const manifestVersionPlain = 1

// Method is how a snapshot is taken.
type Method string

// The methods binarc knows.
const (
	// Physical copies the datadir with mariabackup (xtrabackup on MySQL):
	// fast to take and restore, same server version only.
	Physical Method = "physical"
	// Logical dumps SQL with mariadb-dump (mysqldump): slow for large
	// data, but restores into any version.
	Logical Method = "logical"
)

// ParseMethod checks a --method value.
func ParseMethod(s string) (Method, error) {
	switch Method(s) {
	case Physical, Logical:
		return Method(s), nil
	}
	return "", fmt.Errorf("method %q: use physical (mariabackup/xtrabackup) or logical (mariadb-dump/mysqldump)", s)
}

// Coordinates are where on the primary's binlog a snapshot stands: every
// transaction up to (and only up to) them is in it. Replay starts there.
type Coordinates struct {
	// File and Pos are the primary's binlog file and the offset of the
	// first event not in the snapshot.
	File string `json:"file"`
	Pos  uint64 `json:"pos"`
	// GTIDSet is the GTID position: gtid_slave_pos (MariaDB, "0-1-42") or
	// gtid_executed (MySQL, "uuid:1-42"). Empty when the server has none.
	GTIDSet string `json:"gtid_set,omitempty"`
	// From says where the coordinates were read: "replica" (SHOW SLAVE
	// STATUS with the SQL thread stopped), "mariabackup" (its
	// xtrabackup_binlog_info) or "dump" (mariadb-dump --master-data).
	From string `json:"from"`
}

// String is "file:pos gtid".
func (c Coordinates) String() string {
	s := fmt.Sprintf("%s:%d", c.File, c.Pos)
	if c.GTIDSet != "" {
		s += " gtid " + c.GTIDSet
	}
	return s
}

// Manifest describes a complete snapshot. It is written after the data
// object is stored whole, so a snapshot without one is never restored from.
type Manifest struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Method  Method `json:"method"`
	// Flavor and ServerVersion are the backed-up server's.
	Flavor        string `json:"flavor"`
	ServerVersion string `json:"server_version"`
	// SourceAddr is the server the snapshot was taken from, without
	// credentials; SourceServerID its server_id.
	SourceAddr     string `json:"source_addr"`
	SourceServerID uint32 `json:"source_server_id"`
	// MasterServerID is the server_id of the primary the source replicates
	// from; 0 for a snapshot of a primary (--allow-primary).
	MasterServerID uint32 `json:"master_server_id"`
	// MasterServerUUID is the primary's server_uuid (MySQL replicas).
	MasterServerUUID string      `json:"master_server_uuid,omitempty"`
	Coordinates      Coordinates `json:"coordinates"`
	// ServerGTID is the snapshotted server's full GTID state at the
	// coordinates (absent in manifests written before binarc 0.x with
	// joins): it counts a passive master's own writes, which
	// gtid_slave_pos does not.
	ServerGTID *ServerGTID `json:"server_gtid,omitempty"`
	Started    time.Time   `json:"started"`
	Finished   time.Time   `json:"finished"`
	// DataKey is the data object, relative to the store's prefix.
	DataKey string `json:"data_key"`
	// RawSize is the size of the tool's output; StoredSize and SHA256 are
	// the data object's, as stored (zstd).
	RawSize    int64  `json:"raw_size"`
	StoredSize int64  `json:"stored_size"`
	SHA256     string `json:"sha256"`
	// Encryption is set when the data object is encrypted (sealed with
	// age, after zstd); StoredSize and SHA256 are then the sealed object's.
	Encryption *archive.Encryption `json:"encryption,omitempty"`
	// Tool is the backup tool and its version line.
	Tool        string `json:"tool"`
	ToolVersion string `json:"tool_version"`
}

// ServerGTID is the GTID state of the snapshotted server, read while its
// SQL thread was stopped.
type ServerGTID struct {
	// MariaDB: gtid_current_pos and gtid_binlog_state.
	CurrentPos  string `json:"gtid_current_pos,omitempty"`
	BinlogState string `json:"gtid_binlog_state,omitempty"`
	// MySQL: gtid_executed and the server's server_uuid.
	Executed   string `json:"gtid_executed,omitempty"`
	ServerUUID string `json:"server_uuid,omitempty"`
}

// BinlogServerID is the server_id of the server whose binlog the
// coordinates are on: the primary of a replica, else the server itself.
func (m *Manifest) BinlogServerID() uint32 {
	if m.MasterServerID != 0 {
		return m.MasterServerID
	}
	return m.SourceServerID
}

// BinlogServerUUID is the server_uuid of the server whose binlog the
// coordinates are on, when known (MySQL).
func (m *Manifest) BinlogServerUUID() string {
	if m.MasterServerID != 0 {
		return m.MasterServerUUID
	}
	if m.ServerGTID != nil {
		return m.ServerGTID.ServerUUID
	}
	return ""
}

// DataGTIDState is the GTID state of the snapshot's data: the server's
// full state when recorded, else the coordinates' GTID position.
func (m *Manifest) DataGTIDState() string {
	if g := m.ServerGTID; g != nil {
		switch {
		case g.CurrentPos != "":
			return g.CurrentPos
		case g.Executed != "":
			return g.Executed
		}
	}
	return m.Coordinates.GTIDSet
}

// MarshalManifest renders m as indented JSON.
func MarshalManifest(m *Manifest) []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err) // plain struct: cannot fail
	}
	return append(b, '\n')
}

// UnmarshalManifest reads a manifest and checks what a reader relies on.
func UnmarshalManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	switch {
	case m.Version < 1:
		return nil, fmt.Errorf("manifest has no version")
	case m.Version > ManifestVersion:
		return nil, fmt.Errorf("manifest version %d is newer than this binarc knows (%d): upgrade binarc", m.Version, ManifestVersion)
	case m.ID == "" || m.DataKey == "" || m.SHA256 == "":
		return nil, fmt.Errorf("manifest lacks id, data_key or sha256")
	}
	if _, err := ParseMethod(string(m.Method)); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest of snapshot %q: %w: the manifest is damaged or was not written by binarc; take a new snapshot", m.ID, err)
	}
	return &m, nil
}

// maxSnapshotSize bounds the sizes a manifest may claim (1 PiB): a
// larger one is not a real snapshot, and its arithmetic could overflow.
const maxSnapshotSize = 1 << 50

// check refuses a manifest whose fields cannot be a snapshot binarc took:
// nothing read from the bucket is trusted, and a restore or verify must
// not be the first to trip over an impossible size, digest, data key or
// GTID set. It parses the GTID sets as restore does.
func (m *Manifest) check() error {
	if _, _, err := archive.ParseSnapshotID(m.ID); err != nil {
		return err
	}
	if want := "/" + m.ID + "/" + dataName(m.Method); !strings.HasSuffix("/"+m.DataKey, want) || strings.Contains(m.DataKey, "..") {
		return fmt.Errorf("data_key %q is not this snapshot's data object (want a key ending in %s)", m.DataKey, want[1:])
	}
	if m.RawSize < 0 || m.RawSize > maxSnapshotSize || m.StoredSize <= 0 || m.StoredSize > maxSnapshotSize {
		return fmt.Errorf("sizes raw %d and stored %d are not those of a snapshot (0 to 2^50 bytes, the stored object not empty)", m.RawSize, m.StoredSize)
	}
	if len(m.SHA256) != 64 || strings.Trim(m.SHA256, "0123456789abcdef") != "" {
		return fmt.Errorf("sha256 %q is not 64 lowercase hexadecimal digits", m.SHA256)
	}
	c := m.Coordinates
	if _, _, ok := replication.SplitBinlogName(c.File); !ok || c.Pos < replication.MagicLen {
		return fmt.Errorf("coordinates %q:%d are not a binlog position (a file name ending in a number, an offset of at least %d)", c.File, c.Pos, replication.MagicLen)
	}
	for _, g := range []struct{ name, set string }{{"coordinates gtid_set", c.GTIDSet}, {"the GTID state of its data", m.DataGTIDState()}} {
		if _, err := replication.ParseGTIDState(g.set); err != nil {
			return fmt.Errorf("%s %q: %w", g.name, g.set, err)
		}
	}
	if !m.Finished.IsZero() && m.Finished.Before(m.Started) {
		return fmt.Errorf("finished %s before it started %s", m.Finished.Format(time.RFC3339), m.Started.Format(time.RFC3339))
	}
	return nil
}
