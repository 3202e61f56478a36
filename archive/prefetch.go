package archive

import "context"

// ReadSegments reads segs in order, up to n at once, and hands each to fn
// with its read error; those in skip are handed over unread. At most n
// segments are held at a time.
func (c Catalog) ReadSegments(ctx context.Context, segs []SegmentRef, n int, skip map[int]bool, fn func(i int, plain []byte, err error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		data []byte
		err  error
	}
	results := make([]chan fetched, len(segs))
	for i := range results {
		results[i] = make(chan fetched, 1)
	}
	sem := make(chan struct{}, n)
	go func() {
		for i, s := range segs {
			if skip[i] {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := c.ReadSegment(ctx, s.Key)
				results[i] <- fetched{data, err}
			}()
		}
	}()
	for i := range segs {
		if skip[i] {
			if err := fn(i, nil, nil); err != nil {
				return err
			}
			continue
		}
		var r fetched
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := fn(i, r.data, r.err)
		<-sem
		if err != nil {
			return err
		}
	}
	return nil
}
