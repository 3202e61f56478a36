package archive

import (
	"context"
	"errors"
	"fmt"
)

// ErrRequest marks an error in what the caller asked for (a timeline or a
// binlog file the archive does not hold, a name several timelines hold):
// bad input, not a fault of the archive.
var ErrRequest = errors.New("bad request")

// RequestError marks err as an ErrRequest, keeping its message, for a
// caller to tell bad input (exit status 2) from a failure.
func RequestError(err error) error { return requestError{err} }

// requestError is an ErrRequest whose message is its own.
type requestError struct{ error }

func (e requestError) Is(target error) bool { return target == ErrRequest }
func (e requestError) Unwrap() error        { return e.error }

func requestErrorf(format string, args ...any) error {
	return RequestError(fmt.Errorf(format, args...))
}

// PickTimeline returns the named timeline, or with name "" the newest; a
// name the cluster lacks is an ErrRequest listing the ones it has.
func (c Catalog) PickTimeline(ctx context.Context, name string) (string, error) {
	tls, err := c.ExistingTimelines(ctx)
	if err != nil {
		return "", err
	}
	return c.PickFrom(tls, name)
}

// ExistingTimelines lists the timelines; none is an error naming the
// store and cluster.
func (c Catalog) ExistingTimelines(ctx context.Context) ([]string, error) {
	tls, err := c.Timelines(ctx)
	if err != nil {
		return nil, err
	}
	if len(tls) == 0 {
		return nil, fmt.Errorf("cluster %q has no archive in %s: check --store and --cluster (binarc ls --store URL lists the clusters there)", c.Layout.Cluster, c.Store)
	}
	return tls, nil
}

// PickFrom returns the timeline named among tls, or with name "" the
// newest; a name not among them is an ErrRequest listing them.
func (c Catalog) PickFrom(tls []string, name string) (string, error) {
	if name == "" {
		return tls[len(tls)-1], nil
	}
	for _, t := range tls {
		if t == name {
			return t, nil
		}
	}
	return "", requestErrorf("--timeline %s: no such timeline in cluster %q (it has %v)", name, c.Layout.Cluster, tls)
}
