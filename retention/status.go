package retention

import (
	"context"
	"fmt"
	"os"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

// Status is what binarc ls shows of a cluster: its timelines and their
// files, its snapshots, the joins between timelines, the windows a
// restore can reach, and how far the archive is behind the primary. It
// marshals to ls --json.
type Status struct {
	Cluster   string                   `json:"cluster"`
	Timelines []*archive.TimelineState `json:"timelines"`
	Lag       *Lag                     `json:"lag,omitempty"`
	Snapshots []snapshot.Entry         `json:"snapshots"`
	Windows   []Window                 `json:"restorable"`
	// Joins[i] joins timeline i to the one before it (nil: the first, a
	// timeline holding no binlog, or joins that could not be worked out).
	Joins []*archive.Join `json:"joins,omitempty"`
	// JoinsProblem says why the joins could not be worked out: the
	// windows then end at each timeline's end.
	JoinsProblem error `json:"-"`
}

// StatusRequest says whose status to read.
type StatusRequest struct {
	Catalog archive.Catalog
	// Sources are the primary's servers (several for a multi-host
	// source); the one the newest timeline archives, else the first, is
	// asked how far the archive is behind it. None: no lag.
	Sources []replication.Config
	// WorkDir holds the binlog read to work out joins that are not
	// recorded yet (default: the system's temporary directory).
	WorkDir string
}

// ReadStatus reads the cluster's status. A cluster with neither a
// timeline nor a snapshot is an error naming the store and cluster. A
// primary that cannot be asked, or joins that cannot be worked out, are
// reported in the status, not as errors: the rest is still worth showing.
func ReadStatus(ctx context.Context, req StatusRequest) (*Status, error) {
	cat := req.Catalog
	st := &Status{Cluster: cat.Layout.Cluster}
	var err error
	if st.Timelines, err = cat.Describe(ctx); err != nil {
		return nil, err
	}
	if st.Snapshots, err = snapshot.List(ctx, cat.Store, cat.Layout, cat.Trust); err != nil {
		return nil, err
	}
	if len(st.Timelines) == 0 && len(st.Snapshots) == 0 {
		return nil, fmt.Errorf("cluster %q has no archive in %s: check --store and --cluster (binarc ls --store URL, without --cluster, lists the clusters there)", cat.Layout.Cluster, cat.Store)
	}
	if len(st.Timelines) > 0 && len(req.Sources) > 0 {
		newest := st.Timelines[len(st.Timelines)-1]
		st.Lag = MeasureLag(ctx, archivedSource(req.Sources, newest), newest)
	}
	if len(st.Timelines) > 1 {
		work := req.WorkDir
		if work == "" {
			work = os.TempDir()
		}
		if st.Joins, err = archive.Joins(ctx, cat, work); err != nil {
			st.Joins, st.JoinsProblem = nil, err
		}
	}
	st.Windows = WindowsAcross(st.Timelines, st.Snapshots, st.Joins)
	return st, nil
}

// archivedSource picks, of a multi-host source's servers, the one the
// timeline archives (the writable one when it started); the first when
// none is.
func archivedSource(sources []replication.Config, ts *archive.TimelineState) replication.Config {
	for _, c := range sources {
		if ts.Info != nil && c.Addr() == ts.Info.SourceAddr {
			return c
		}
	}
	return sources[0]
}
