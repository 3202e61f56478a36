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
// keeps is bounded by --max-buffer and --segment-size. With the default
// flags that is at most about 43 MiB of live heap (--max-buffer's 32 MiB,
// the segment's encoder, the connection to the primary), and the binary's
// own mapped pages add about 25 MiB of RSS to what the runtime holds:
// 56 MiB leaves the collector room and RSS under 80 MiB.
const streamMemoryLimit = 56 << 20

// restoreMemoryLimit is the same for binarc restore and the serve inside
// it, held to 150 MiB of RSS: its largest live set is the fetch's
// prefetch of decoded segments (a few times --segment-size), and without a
// limit the heap's headroom varied its peak from 100 to 158 MiB from one
// run to the next on the same restore (docs/BENCHMARKS.md).
const restoreMemoryLimit = 96 << 20

func setStreamMemoryLimit() { setMemoryLimit(streamMemoryLimit) }

func setRestoreMemoryLimit() { setMemoryLimit(restoreMemoryLimit) }

func setMemoryLimit(n int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(n)
	}
}
