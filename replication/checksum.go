package replication

import (
	"bytes"
	"strconv"
	"strings"
)

// Checksum algorithms a format description names
// (enum_binlog_checksum_alg in MySQL and MariaDB).
const (
	ChecksumNone  = 0 // BINLOG_CHECKSUM_ALG_OFF
	ChecksumCRC32 = 1 // BINLOG_CHECKSUM_ALG_CRC32
)

// formatDescriptionMin is the shortest format description body that can
// carry the checksum algorithm: binlog_version (2), server_version (50),
// create_timestamp (4), header_length (1), then at least the algorithm (1)
// and its CRC32 (4).
const formatDescriptionMin = 2 + 50 + 4 + 1 + 5

// FormatChecksum reads a file's format description event (header
// included): aware says whether its server writes the checksum algorithm
// into it, and then alg is that algorithm (ChecksumNone or ChecksumCRC32;
// another value is a corrupt event). An aware server ends its format
// description with the algorithm byte and a CRC32 of the event, whatever
// binlog_checksum says, and the algorithm says whether the file's other
// events end with a CRC32 (log_event.cc, Format_description_log_event).
func FormatChecksum(fde []byte) (aware bool, alg byte) {
	if len(fde) < HeaderLen+formatDescriptionMin {
		return false, ChecksumNone
	}
	body := fde[HeaderLen:]
	if !ChecksumAware(string(bytes.TrimRight(body[2:52], "\x00"))) {
		return false, ChecksumNone
	}
	return true, fde[len(fde)-5]
}

// ChecksumAware says whether a server of this version writes the checksum
// algorithm into its format description: MySQL 5.6.1 and later, MariaDB
// 5.3 and later.
func ChecksumAware(version string) bool {
	var v [3]int
	for i, part := range strings.SplitN(strings.SplitN(version, "-", 2)[0], ".", 3) {
		v[i], _ = strconv.Atoi(part)
	}
	if strings.Contains(version, "MariaDB") {
		return v[0] > 5 || v[0] == 5 && v[1] >= 3
	}
	return v[0] > 5 || v[0] == 5 && (v[1] > 6 || v[1] == 6 && v[2] >= 1)
}
