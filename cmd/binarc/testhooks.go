//go:build !binarc_testhooks

package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// Test hooks are compiled only into test builds (go build -tags
// binarc_testhooks; the integration tests build binarc that way). In the
// shipped binary nothing can age snapshots for a prune or hold a replica's
// SQL thread stopped: see testhooks_on.go.

// testNow stands in for the clock; nil in the shipped binary.
var testNow func() time.Time

// clockNow is the time a prune takes as now: zero means the clock.
func clockNow() time.Time { return time.Time{} }

// testSnapshotHold is nil in the shipped binary.
func testSnapshotHold(zerolog.Logger) func(context.Context) { return nil }

// testRestoreHold is nil in the shipped binary.
func testRestoreHold(zerolog.Logger) func(context.Context) { return nil }

// testReportPeakRSS does nothing in the shipped binary.
func testReportPeakRSS() {}
