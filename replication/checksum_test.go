package replication

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/replication"
)

func TestChecksumAware(t *testing.T) {
	for v, want := range map[string]bool{
		"10.11.6-MariaDB-log": true, "5.5.68-MariaDB": true, "5.3.0-MariaDB": true,
		"8.0.36": true, "5.6.1-log": true, "5.6.0": false, "5.5.62-log": false, "": false,
	} {
		if ChecksumAware(v) != want {
			t.Errorf("ChecksumAware(%q) = %v", v, !want)
		}
	}
}

// formatDescription is a format description of the given server version
// ending with the checksum algorithm alg and a CRC32.
func formatDescription(version string, alg byte) []byte {
	raw := make([]byte, HeaderLen+2+50+4+1+27+5)
	raw[4] = byte(gomysql.FORMAT_DESCRIPTION_EVENT)
	binary.LittleEndian.PutUint32(raw[9:], uint32(len(raw)))
	body := raw[HeaderLen:]
	binary.LittleEndian.PutUint16(body, 4)
	copy(body[2:52], version)
	body[56] = HeaderLen
	raw[len(raw)-5] = alg
	binary.LittleEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
	return raw
}

func TestFormatChecksum(t *testing.T) {
	for _, c := range []struct {
		version string
		alg     byte
		aware   bool
	}{
		{"10.11.6-MariaDB-log", ChecksumCRC32, true},
		{"10.11.6-MariaDB-log", ChecksumNone, true},
		{"8.0.36", 7, true},
		{"5.5.62-log", ChecksumCRC32, false},
	} {
		aware, alg := FormatChecksum(formatDescription(c.version, c.alg))
		if aware != c.aware || aware && alg != c.alg {
			t.Errorf("FormatChecksum(%s, alg %d) = %v, %d", c.version, c.alg, aware, alg)
		}
	}
	if aware, _ := FormatChecksum(formatDescription("10.11.6-MariaDB", 1)[:HeaderLen+40]); aware {
		t.Error("a format description too short for the algorithm is called aware")
	}
}
