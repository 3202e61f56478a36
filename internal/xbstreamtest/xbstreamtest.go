// Package xbstreamtest builds xbstream chunks (mariabackup's stream format)
// for tests. It is imported by tests only.
package xbstreamtest

import (
	"bytes"
	"encoding/binary"
)

// Sample is a one-file xbstream.
func Sample() []byte {
	var b []byte
	b = append(b, Chunk('P', "ibdata1", bytes.Repeat([]byte("data"), 50000))...)
	b = append(b, Chunk('E', "ibdata1", nil)...)
	return b
}

// Chunk builds one xbstream chunk.
func Chunk(typ byte, path string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("XBSTCK01")
	b.WriteByte(0)
	b.WriteByte(typ)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	if typ == 'P' {
		_ = binary.Write(&b, binary.LittleEndian, uint64(len(payload)))
		_ = binary.Write(&b, binary.LittleEndian, uint64(0))
		_ = binary.Write(&b, binary.LittleEndian, uint32(0))
		b.Write(payload)
	}
	return b.Bytes()
}
