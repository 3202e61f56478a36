package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// semiSyncRun is one mode of the matrix: binarc's flags (or the
// reference replica) and the primary's wait point.
type semiSyncRun struct {
	key, name, args, waitPoint string
	replica                    bool
}

var semiSyncRuns = []semiSyncRun{
	{key: "async", name: "asynchronous", waitPoint: "AFTER_SYNC"},
	{key: "store", name: "semi-sync, store", args: "--semi-sync", waitPoint: "AFTER_SYNC"},
	{key: "after-commit", name: "semi-sync, store, AFTER_COMMIT", args: "--semi-sync", waitPoint: "AFTER_COMMIT"},
	{key: "local", name: "semi-sync, local", args: "--semi-sync --semi-sync-durability local", waitPoint: "AFTER_SYNC"},
	{key: "replica", name: "semi-sync, a MariaDB replica (reference)", waitPoint: "AFTER_SYNC", replica: true},
}

// selectedRuns is semiSyncRuns cut to -semi-sync-modes.
func selectedRuns() ([]semiSyncRun, error) {
	want := map[string]bool{}
	for _, k := range strings.Split(*semiSyncModes, ",") {
		want[strings.TrimSpace(k)] = true
	}
	var runs []semiSyncRun
	for _, r := range semiSyncRuns {
		if want[r.key] {
			runs = append(runs, r)
			delete(want, r.key)
		}
	}
	for k := range want {
		return nil, fmt.Errorf("-semi-sync-modes: no mode %q (use async, store, after-commit, local, replica)", k)
	}
	return runs, nil
}

// semiSyncMatrix parses -semi-sync-latencies and -semi-sync-writers.
func semiSyncMatrix() ([]time.Duration, []int, error) {
	var lats []time.Duration
	for _, f := range strings.Split(*semiSyncLatencies, ",") {
		if f == "0" {
			f = "0s"
		}
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 0 {
			return nil, nil, fmt.Errorf("-semi-sync-latencies %q: want durations like 0,10ms,50ms", *semiSyncLatencies)
		}
		lats = append(lats, d)
	}
	var ws []int
	for _, f := range strings.Split(*semiSyncWriters, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-semi-sync-writers %q: want counts like 8,64", *semiSyncWriters)
		}
		ws = append(ws, n)
	}
	return lats, ws, nil
}
