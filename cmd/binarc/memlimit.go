package main

import (
	"os"
	"runtime/debug"
)

// streamMemoryLimit is the Go runtime's soft memory limit for binarc
// stream, unless GOMEMLIMIT says otherwise: the archiver is held to 100 MiB
// of RSS, and with the default GOGC a burst of short-lived buffers (a
// catch-up, a compaction) would let the heap double past it before a
// collection. The limit only makes the collector work earlier; what binarc
// keeps is bounded by --max-buffer and --segment-size.
const streamMemoryLimit = 70 << 20

func setStreamMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(streamMemoryLimit)
	}
}
