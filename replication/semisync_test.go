package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// packet frames a payload with sequence 0.
func packet(payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), 0}, payload...)
}

func TestSemiSyncHoldsBackGoMySQLsAcks(t *testing.T) {
	var requested []Position
	dumping := 0
	s := &SemiSync{Requested: func(p Position) { requested = append(requested, p) }, Dumping: func() { dumping++ }}
	ours, primary := net.Pipe()
	defer primary.Close()
	c := &ackConn{Conn: ours, s: s}
	got := make(chan []byte, 4)
	go func() {
		for {
			buf := make([]byte, 4)
			if _, err := io.ReadFull(primary, buf); err != nil {
				close(got)
				return
			}
			n := int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16
			body := make([]byte, n)
			if _, err := io.ReadFull(primary, body); err != nil {
				close(got)
				return
			}
			got <- append(buf, body...)
		}
	}()
	if err := s.Ack(Position{File: "mysql-bin.000001", Offset: 10}); !errors.Is(err, ErrNotDumping) {
		t.Fatalf("Ack before the dump: %v, want ErrNotDumping", err)
	}
	dump := packet([]byte{comBinlogDump, 4, 0, 0, 0})
	if _, err := c.Write(dump); err != nil {
		t.Fatal(err)
	}
	if p := <-got; !bytes.Equal(p, dump) || dumping != 1 {
		t.Fatalf("dump command: forwarded %x, Dumping called %d times", p, dumping)
	}
	// go-mysql's immediate acknowledgement: swallowed, reported.
	goAck := packet(append(append([]byte{0xef}, binary.LittleEndian.AppendUint64(nil, 1234)...), "mysql-bin.000001"...))
	if n, err := c.Write(goAck); err != nil || n != len(goAck) {
		t.Fatalf("write of go-mysql's ack: %d, %v", n, err)
	}
	if len(requested) != 1 || requested[0] != (Position{File: "mysql-bin.000001", Offset: 1234}) {
		t.Fatalf("requests %v", requested)
	}
	// Ours, when told.
	if err := s.Ack(Position{File: "mysql-bin.000001", Offset: 1234}); err != nil {
		t.Fatal(err)
	}
	if p := <-got; !bytes.Equal(p, goAck) {
		t.Fatalf("ack packet %x, want %x", p, goAck)
	}
	c.Close()
	if err := s.Ack(Position{File: "mysql-bin.000001", Offset: 2000}); !errors.Is(err, ErrNotDumping) {
		t.Fatalf("Ack after close: %v, want ErrNotDumping", err)
	}
	select {
	case p, ok := <-got:
		if ok {
			t.Fatalf("unexpected packet %x", p)
		}
	default:
	}
}
