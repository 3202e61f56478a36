package restore

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/binarc/binarc/archive"
	"github.com/binarc/binarc/replication"
	"github.com/binarc/binarc/snapshot"
)

// systemSchemas hold no user data.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// targetIdentity is what a running target says it is.
type targetIdentity struct {
	serverID   uint32
	serverUUID string   // MySQL only
	schemas    []string // non-system schemas
}

// guardTarget refuses to write into a server the archive was taken from
// (its primary, or the replica a snapshot was taken on: a mistaken
// --target would overwrite production, and the replay reach its
// replicas), or a server that holds user data (a logical snapshot drops
// and recreates every table it holds; a replay writes into whatever is
// there). force (--force-target) overrides both.
func guardTarget(ctx context.Context, cat archive.Catalog, plan *RestorePlan, c ReplayClient, loadsDump, force bool) error {
	if c.Socket != "" || force {
		return nil
	}
	id, err := readTargetIdentity(ctx, c)
	if err != nil {
		return err
	}
	where := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	sources, err := archiveSources(ctx, cat, plan)
	if err != nil {
		return err
	}
	if what, ok := sources[strconv.FormatUint(uint64(id.serverID), 10)]; ok {
		return fmt.Errorf("--target %s has server_id %d, the %s: binarc does not restore into a server the archive was taken from; check --target, or give --force-target if you mean it", where, id.serverID, what)
	}
	if what, ok := sources[strings.ToLower(id.serverUUID)]; ok && id.serverUUID != "" {
		return fmt.Errorf("--target %s has server_uuid %s, the %s: binarc does not restore into a server the archive was taken from; check --target, or give --force-target if you mean it", where, id.serverUUID, what)
	}
	if len(id.schemas) > 0 {
		what := "the replay writes into it (with --from, into a server that already stands at those coordinates, that is the point: give --force-target)"
		if loadsDump {
			what = "loading the snapshot drops and recreates its tables; restore into an empty server, or give --force-target if you mean it"
		}
		return fmt.Errorf("--target %s holds user data (schemas %s): %s", where, strings.Join(id.schemas, ", "), what)
	}
	return nil
}

// archiveSources maps the server_ids (and MySQL server_uuids) the archive
// was taken from to a description.
func archiveSources(ctx context.Context, cat archive.Catalog, plan *RestorePlan) (map[string]string, error) {
	out := map[string]string{}
	tls, err := cat.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	for _, tl := range tls {
		ti, err := cat.ReadTimeline(ctx, tl)
		if err != nil {
			return nil, err
		}
		if ti.SourceServerID != 0 {
			out[strconv.FormatUint(uint64(ti.SourceServerID), 10)] = fmt.Sprintf("primary the archive's timeline %s streams from (%s)", tl, ti.SourceAddr)
		}
	}
	entries, err := snapshot.List(ctx, cat.Store, cat.Layout, cat.Trust)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if m := e.Manifest; m != nil {
			add := func(id uint32, what string) {
				k := strconv.FormatUint(uint64(id), 10)
				if _, seen := out[k]; !seen && id != 0 {
					out[k] = what
				}
			}
			add(m.SourceServerID, fmt.Sprintf("server snapshot %s was taken on (%s)", m.ID, m.SourceAddr))
			add(m.MasterServerID, fmt.Sprintf("primary of snapshot %s", m.ID))
		}
	}
	if plan != nil && plan.Binlog != nil {
		for _, f := range plan.Binlog.Files {
			for _, g := range []string{f.FirstGTID, f.LastGTID} {
				if uuid, _, ok := strings.Cut(g, ":"); ok {
					out[strings.ToLower(uuid)] = "source of the archived GTIDs " + g
				}
			}
		}
	}
	return out, nil
}

func readTargetIdentity(ctx context.Context, c ReplayClient) (*targetIdentity, error) {
	where := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	// With the target's TLS options (--target-tls), as the replay connects.
	cfg := replication.Config{Host: c.Host, Port: c.Port, User: c.User, Password: c.Password, TLS: c.TLS}
	conn, err := cfg.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("--target %s: connect to check what it is: %w", where, err)
	}
	defer func() {
		if conn.Quit() != nil {
			conn.Close()
		}
	}()
	id := &targetIdentity{}
	r, err := conn.Execute("SELECT @@server_id")
	if err != nil {
		return nil, fmt.Errorf("--target %s: SELECT @@server_id: %w", where, err)
	}
	v, _ := r.GetUint(0, 0)
	id.serverID = uint32(v)
	r.Close()
	// MySQL only; MariaDB has no server_uuid.
	if r, err := conn.Execute("SELECT @@server_uuid"); err == nil {
		s, _ := r.GetString(0, 0)
		id.serverUUID = strings.Clone(s)
		r.Close()
	}
	r, err = conn.Execute("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("--target %s: list its schemas: %w", where, err)
	}
	for i := range r.RowNumber() {
		s, _ := r.GetString(i, 0)
		if !systemSchemas[strings.ToLower(s)] {
			id.schemas = append(id.schemas, strings.Clone(s))
		}
	}
	r.Close()
	return id, nil
}
