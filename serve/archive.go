package serve

import (
	"context"
	"fmt"
	"net"

	"github.com/binarc/binarc/archive"
)

// ArchiveOptions is one binarc serve: an archive served on an address.
type ArchiveOptions struct {
	Config
	Catalog archive.Catalog
	Listen  string
	// InsecureListen allows a non-loopback Listen without Config.TLS
	// (CheckListen).
	InsecureListen bool
	// Joins, if set, lets streams cross from one timeline to the next
	// (ArchiveSource.Joins).
	Joins func(ctx context.Context) ([]*Join, error)
	// ReadSlots bounds the files read at once (ArchiveSource.ReadSlots);
	// zero means defaultReadSlots.
	ReadSlots int
}

// defaultReadSlots: a file read holds about 40 MiB (the decoder's window
// of a compacted file and buffers), so four keep serve near 200 MiB
// however many clients read; the machine's cores are the limit on
// throughput before that.
const defaultReadSlots = 2

// ServeArchive serves the archive on o.Listen until ctx is done: the
// newest timeline, and with o.Joins the timelines joined to it before. A
// zero ServerID takes the newest archived primary's own.
func ServeArchive(ctx context.Context, o ArchiveOptions) error {
	if err := CheckListen(o.Listen, o.TLS != nil, o.InsecureListen); err != nil {
		return err
	}
	tls, err := o.Catalog.Timelines(ctx)
	if err != nil {
		return err
	}
	if len(tls) == 0 {
		return fmt.Errorf("cluster %q has no archived binlog: nothing to serve (is binarc stream running, with the same --store and --cluster?)", o.Catalog.Layout.Cluster)
	}
	if o.ServerID == 0 {
		ti, err := o.Catalog.ReadTimeline(ctx, tls[len(tls)-1])
		if err != nil {
			return err
		}
		o.ServerID = ti.SourceServerID
	}
	slots := o.ReadSlots
	if slots <= 0 {
		slots = defaultReadSlots
	}
	o.Source = &ArchiveSource{Catalog: o.Catalog, Joins: o.Joins, ReadSlots: slots}
	srv, err := New(o.Config)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	o.Log.Info().Str("listen", ln.Addr().String()).Str("timeline", tls[len(tls)-1]).Uint32("server_id", o.ServerID).
		Bool("follow", o.Follow).Bool("tls", o.TLS != nil).Bool("client_certificates", o.TLS != nil && o.TLS.ClientCAs != nil).Msg("serving the archive to replicas")
	return srv.Serve(ctx, ln)
}
