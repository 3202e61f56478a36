package main

import (
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]byteSize{
		"4096": 4096, "16MiB": 16 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "10MB": 10_000_000,
		"2KB": 2000, "3GB": 3_000_000_000, "8K": 8 << 10, "2M": 2 << 20, "1G": 1 << 30, "100B": 100, " 16 MiB ": 16 << 20,
	} {
		got, err := parseByteSize(in)
		if err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "0", "-1MiB", "1.5MiB", "16TiB", "1099511627776GiB", "MiB"} {
		if got, err := parseByteSize(in); err == nil || !strings.Contains(err.Error(), "16MiB") {
			t.Errorf("parseByteSize(%q) = %d, %v; want an error naming the form", in, got, err)
		}
	}
}
