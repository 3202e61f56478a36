package retention

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/archive/objstore"
	"github.com/binarc/binarc/lease"
	"github.com/binarc/binarc/snapshot"
	"github.com/rs/zerolog"
)

// ErrNotLeaseHolder means binarc stream no longer holds the stream's lease,
// which a prune it runs requires.
var ErrNotLeaseHolder = errors.New("this process does not hold the stream's lease")

// PruneLeaseTTL is how long the prune lease lasts without renewal.
const PruneLeaseTTL = 30 * time.Second

// PruneRequest is one prune of a cluster.
type PruneRequest struct {
	Store  objstore.Store
	Layout archive.Layout
	Keep   time.Duration
	// Now ends the window; zero means the clock's time. Tests set it
	// ahead to make real snapshots old (binarc prune --now).
	Now    time.Time
	DryRun bool
	// Command names the prune in its lease: "binarc prune", "binarc stream".
	Command string
	// StreamLease is the stream's lease, handed over by binarc stream: it
	// prunes as the cluster's writer, so Prune first makes sure the lease
	// is still held (renewing it), and does nothing if it is not.
	StreamLease *lease.Lease
	Log         zerolog.Logger
}

// PruneResult is what a prune decided and did.
type PruneResult struct {
	Plan              *PrunePlan
	Objects           Deletion
	SnapshotsDeleted  []string
	TimelinesDeleted  []string
	FilesDeleted      int
	SnapshotsRetained int
	// Drills are the drill records older than the window (the newest is
	// always kept): deleted, or to be deleted by a dry run.
	Drills []string
	// Stopped says why deleting stopped before the plan was carried out.
	Stopped string
}

// ErrPruneIncomplete is matched by Prune's error when some deletes failed
// or deleting stopped early. What was deleted left the archive consistent;
// the next prune carries on.
var ErrPruneIncomplete = errors.New("prune incomplete")

// Prune plans a prune and, unless DryRun, carries it out under the prune
// lease: snapshots first, then binlog. A dry run writes nothing, not even
// the lease.
//
// Pruning while binarc stream runs is safe without the stream's lease:
// prune deletes only whole, indexed files before the base snapshot's
// coordinates (and whole older timelines), and those are behind the
// stream's durable position; the stream only writes after it (segments,
// the index of the file it finishes, a new timeline). The two never touch
// the same key.
func Prune(ctx context.Context, req PruneRequest) (*PruneResult, error) {
	if req.Keep < MinKeep {
		return nil, fmt.Errorf("keep %s: keep at least %s", req.Keep, MinKeep)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	cat := archive.Catalog{Store: req.Store, Layout: req.Layout}
	if err := cat.CheckLayoutVersion(ctx); err != nil {
		return nil, err
	}
	if !req.DryRun {
		if req.StreamLease != nil {
			if err := req.StreamLease.Confirm(ctx); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotLeaseHolder, err)
			}
		}
		command := req.Command
		if command == "" {
			command = "binarc prune"
		}
		lease, err := lease.AcquireAt(ctx, req.Store, req.Layout.PruneLeaseKey(), req.Layout.Cluster, command, PruneLeaseTTL)
		if err != nil {
			return nil, err
		}
		var release func() error
		ctx, release = lease.Hold(ctx)
		defer func() {
			if err := release(); err != nil {
				req.Log.Warn().Err(err).Msg("could not release the prune lease; it expires by itself")
			}
		}()
	}
	st, err := LoadPruneState(ctx, req.Store, req.Layout)
	for attempt := 1; attempt < 3 && errors.Is(err, objstore.ErrNotExist); attempt++ {
		// An object listed a moment ago is gone: the stream compacted the
		// live file (or indexed it) while we read. Read again.
		st, err = LoadPruneState(ctx, req.Store, req.Layout)
	}
	if err != nil {
		return nil, err
	}
	if len(st.Timelines) == 0 && len(st.Snapshots) == 0 {
		return nil, fmt.Errorf("cluster %q has no archive in %s: check --store and --cluster (binarc ls --store URL lists the clusters there)", req.Layout.Cluster, req.Store)
	}
	res := &PruneResult{Plan: PlanPrune(st, req.Keep, now)}
	if res.Drills, err = oldDrills(ctx, cat, now.Add(-req.Keep)); err != nil {
		return nil, err
	}
	if req.DryRun || res.Plan.KeepAll != "" {
		return res, nil
	}
	res.execute(ctx, cat, req.Log)
	drills := DeleteKeys(ctx, cat.Store, res.Drills)
	res.Objects.Add(drills)
	res.Drills = drills.Deleted
	if lockedOnly(res) {
		return res, nil
	}
	if !res.Objects.OK() || res.Stopped != "" {
		if cause := context.Cause(ctx); cause != nil && res.Stopped == "" {
			res.Stopped = cause.Error()
		}
		return res, fmt.Errorf("%w: %d objects could not be deleted; %s", ErrPruneIncomplete, len(res.Objects.Failed), res.Stopped)
	}
	return res, nil
}

// oldDrills lists the drill records (binarc drill's reports) made before
// cutoff, but never the newest: the last proof that the archive restores
// stays, however old (binarc ls and the status page show it, and its age
// is what BinarcNoRecentDrill alerts on). A name that is not a drill
// record's is left alone.
func oldDrills(ctx context.Context, cat archive.Catalog, cutoff time.Time) ([]string, error) {
	keys, err := ListAll(ctx, cat.Store, cat.Layout.DrillsPrefix())
	if err != nil {
		return nil, fmt.Errorf("list the drill records: %w", err)
	}
	type rec struct {
		key string
		at  time.Time
	}
	var recs []rec
	for _, k := range keys {
		if at, err := archive.ParseDrillName(k); err == nil {
			recs = append(recs, rec{k, at})
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].at.Before(recs[j].at) })
	var old []string
	for i, r := range recs {
		if i < len(recs)-1 && r.at.Before(cutoff) {
			old = append(old, r.key)
		}
	}
	return old, nil
}

// LoadPruneState reads what PlanPrune needs: the snapshots, the timelines
// with their files, the state (size) of just the files snapshots'
// coordinates name, and the snapshot lease. It reads no other index, so a
// prune costs a few LISTs and GETs however long the archive.
func LoadPruneState(ctx context.Context, store objstore.Store, layout archive.Layout) (PruneState, error) {
	var st PruneState
	snaps, err := snapshot.List(ctx, store, layout, nil)
	if err != nil {
		return st, err
	}
	st.Snapshots = snaps
	need := map[string]bool{}
	for _, e := range snaps {
		if e.Complete {
			need[e.Manifest.Coordinates.File] = true
		}
	}
	cat := archive.Catalog{Store: store, Layout: layout}
	names, err := cat.Timelines(ctx)
	if err != nil {
		return st, err
	}
	for _, name := range names {
		ts := &archive.TimelineState{Name: name}
		if ts.Info, err = cat.ReadTimeline(ctx, name); err != nil {
			return st, fmt.Errorf("timeline %s: %w", name, err)
		}
		refs, err := cat.Files(ctx, name)
		if err != nil {
			return st, err
		}
		for _, ref := range refs {
			fs := &archive.FileState{Timeline: name, File: ref.Name, Complete: ref.Indexed}
			if need[ref.Name] {
				if fs, err = cat.FileState(ctx, name, ref); err != nil {
					return st, err
				}
			}
			ts.Files = append(ts.Files, fs)
		}
		st.Timelines = append(st.Timelines, ts)
		j, err := archive.ReadJoin(ctx, cat, name)
		if err != nil {
			return st, fmt.Errorf("timeline %s: %w", name, err)
		}
		if j != nil {
			if st.Joins == nil {
				st.Joins = map[string]*archive.Join{}
			}
			st.Joins[name] = j
		}
	}
	// The lease is judged by the real clock, whatever now the prune was
	// given: it is about who runs at this moment.
	st.SnapshotJob, err = lease.Read(ctx, store, layout.SnapshotLeaseKey(), time.Now())
	return st, err
}

// execute carries out the plan. Snapshots go first, each manifest before
// the rest of its folder: without its manifest a snapshot is incomplete,
// which restore already passes over, whereas a manifest left without its
// data would be a complete snapshot that cannot be restored. Binlog goes
// only if every doomed snapshot lost its manifest (a snapshot still
// complete still needs its binlog), in catalog order, oldest first,
// stopping at the first failure, so what is left of each timeline is a run
// of whole files up to its end.
func (r *PruneResult) execute(ctx context.Context, cat archive.Catalog, log zerolog.Logger) {
	layout := cat.Layout
	var manifests, doomed []string
	for _, d := range r.Plan.Snapshots {
		if !d.Delete {
			r.SnapshotsRetained++
			continue
		}
		doomed = append(doomed, d.Entry.ID)
		if d.Entry.Complete || d.Entry.Problem != "" {
			manifests = append(manifests, layout.SnapshotManifestKey(d.Entry.ID))
		}
	}
	md := DeleteKeys(ctx, cat.Store, manifests)
	r.Objects.Add(md)
	stillComplete := map[string]bool{}
	for _, f := range md.Failed {
		for _, id := range doomed {
			if f.Key == layout.SnapshotManifestKey(id) {
				stillComplete[id] = true
			}
		}
	}
	var rest []string
	for _, id := range doomed {
		if stillComplete[id] {
			continue
		}
		keys, err := ListAll(ctx, cat.Store, layout.SnapshotPrefix(id))
		if err != nil {
			r.Objects.Failed = append(r.Objects.Failed, DeleteFailure{Key: layout.SnapshotPrefix(id), Err: fmt.Errorf("list: %w", err)})
			continue
		}
		rest = append(rest, keys...)
	}
	rd := DeleteKeys(ctx, cat.Store, rest)
	r.Objects.Add(rd)
	left := map[string]bool{}
	for _, f := range rd.Failed {
		for _, id := range doomed {
			if strings.HasPrefix(f.Key, layout.SnapshotPrefix(id)) {
				left[id] = true
			}
		}
	}
	for _, id := range doomed {
		if !stillComplete[id] && !left[id] {
			r.SnapshotsDeleted = append(r.SnapshotsDeleted, id)
			log.Info().Str("snapshot", id).Msg("pruned snapshot")
		}
	}
	if len(stillComplete) > 0 {
		r.Stopped = "the manifest of a snapshot older than the base could not be deleted, so the snapshot is still complete and its binlog is kept"
		return
	}
	for _, tl := range r.Plan.Timelines {
		if tl.Whole {
			d := DeleteTimeline(ctx, cat, tl.Name)
			r.Objects.Add(d)
			if !d.OK() {
				r.Stopped = fmt.Sprintf("deleting timeline %s stopped at a failure; what is left of it is whole files up to its end, and the next prune continues", tl.Name)
				return
			}
			r.TimelinesDeleted = append(r.TimelinesDeleted, tl.Name)
			r.FilesDeleted += len(tl.Files)
			log.Info().Str("timeline", tl.Name).Int("files", len(tl.Files)).Msg("pruned timeline")
			continue
		}
		if tl.Deleting() == 0 {
			continue
		}
		refs, err := cat.Files(ctx, tl.Name)
		if err != nil {
			r.Objects.Failed = append(r.Objects.Failed, DeleteFailure{Key: cat.Layout.TimelinePrefix(tl.Name), Err: fmt.Errorf("list: %w", err)})
			r.Stopped = fmt.Sprintf("could not list timeline %s", tl.Name)
			return
		}
		byName := map[string]archive.FileRef{}
		for _, ref := range refs {
			byName[ref.Name] = ref
		}
		for _, f := range tl.Files {
			if !f.Delete {
				continue
			}
			ref, ok := byName[f.File]
			if !ok {
				continue // gone since the plan was made: another prune
			}
			d := DeleteFile(ctx, cat, tl.Name, ref)
			r.Objects.Add(d)
			if !d.OK() {
				r.Stopped = fmt.Sprintf("deleting %s of timeline %s stopped at a failure; its index is kept until its data is gone, and the next prune continues", f.File, tl.Name)
				return
			}
			r.FilesDeleted++
			log.Info().Str("timeline", tl.Name).Str("binlog", f.File).Int("objects", len(d.Deleted)).Msg("pruned binlog file")
		}
	}
}

// lockedOnly tells whether every object the prune could not delete is
// under S3 Object Lock. Those are kept on purpose (the lock is what keeps
// a stolen credential from erasing the history), and everything after
// them is newer and locked longer: the prune stopped where it had to, and
// says until when.
func lockedOnly(res *PruneResult) bool {
	if len(res.Objects.Failed) == 0 {
		return false
	}
	var first *objstore.LockedError
	for _, f := range res.Objects.Failed {
		var le *objstore.LockedError
		if !errors.As(f.Err, &le) {
			return false
		}
		if first == nil || le.Until.Before(first.Until) {
			first = le
		}
	}
	res.Stopped = fmt.Sprintf("%d object(s) are under S3 Object Lock and were kept (the earliest, %s, until %s); a prune after that removes them",
		len(res.Objects.Failed), first.Key, first.Until.UTC().Format(time.RFC3339))
	return true
}
