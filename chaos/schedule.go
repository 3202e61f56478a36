package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Kind is a kind of step in the schedule: a fault, a checkpoint (writers
// paused for a restore point) or a snapshot.
type Kind string

// The steps a schedule draws from.
const (
	KillBinarc    Kind = "kill-binarc"       // SIGKILL binarc, restart it
	KillMaster    Kind = "kill-master"       // SIGKILL the writable master, restart it
	StopMaster    Kind = "stop-master"       // clean stop of the writable master, restart it
	FlipClean     Kind = "flip-clean"        // read_only on, wait, the other side writable
	FlipHard      Kind = "flip-hard"         // SIGKILL the writable master, promote the other
	PromoteR      Kind = "promote-replica"   // SIGKILL the writable master, promote R
	StoreDown     Kind = "store-down"        // the S3 proxy refuses every connection
	StoreSlow     Kind = "store-slow"        // latency and dropped connections to S3
	LinkCut       Kind = "link-cut"          // binarc's connection to the writable cut
	LinkFreeze    Kind = "link-freeze"       // binarc's connection frozen
	Purge         Kind = "purge"             // PURGE BINARY LOGS on the writable master
	SnapshotFault Kind = "snapshot-in-fault" // a snapshot while the store is slow
	Snapshot      Kind = "snapshot"          // binarc snapshot --keep of the passive side
	Pause         Kind = "checkpoint"        // writers paused: a restore point
)

// Step is one scheduled action.
type Step struct {
	At   time.Duration `json:"at"` // after the campaign's start
	Kind Kind          `json:"kind"`
	For  time.Duration `json:"for"` // how long a fault lasts
}

func (s Step) String() string {
	return fmt.Sprintf("%6.1fs %-18s %v", s.At.Seconds(), s.Kind, s.For)
}

// faultWeights are the relative frequencies of the faults.
var faultWeights = []struct {
	kind   Kind
	weight int
}{
	{KillBinarc, 4}, {KillMaster, 2}, {StopMaster, 1}, {FlipClean, 3}, {FlipHard, 1}, {PromoteR, 1},
	{StoreDown, 2}, {StoreSlow, 2}, {LinkCut, 2}, {LinkFreeze, 2}, {Purge, 1}, {SnapshotFault, 1},
}

// NewSchedule draws the campaign's steps from seed: a fault every 3–9 s,
// a checkpoint every ~7 s and a snapshot every ~40 s between them, nothing
// in the last 10 s (the cluster settles). The same seed and duration give
// the same schedule.
func NewSchedule(seed uint64, duration time.Duration) []Step {
	rng := rand.New(rand.NewPCG(seed, 0x6368616f73)) // "chaos"
	total := 0
	for _, f := range faultWeights {
		total += f.weight
	}
	var steps []Step
	at := 4 * time.Second
	nextCheckpoint, nextSnapshot := 3*time.Second, 20*time.Second
	for {
		at += time.Duration(3000+rng.IntN(6000)) * time.Millisecond
		if at > duration-10*time.Second {
			break
		}
		for nextCheckpoint < at {
			steps = append(steps, Step{At: nextCheckpoint, Kind: Pause})
			nextCheckpoint += time.Duration(5000+rng.IntN(4000)) * time.Millisecond
		}
		if nextSnapshot < at {
			steps = append(steps, Step{At: nextSnapshot, Kind: Snapshot})
			nextSnapshot += time.Duration(30000+rng.IntN(20000)) * time.Millisecond
		}
		pick := rng.IntN(total)
		for _, f := range faultWeights {
			if pick < f.weight {
				steps = append(steps, Step{At: at, Kind: f.kind, For: time.Duration(500+rng.IntN(4000)) * time.Millisecond})
				break
			}
			pick -= f.weight
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	return steps
}
