package stream

import "github.com/binarc/binarc/archive"

// collectSink records what a Segmenter hands on.
type collectSink struct {
	segs []*archive.Segment
	ends []FileEnd
}

func (c *collectSink) SubmitSegment(s *archive.Segment) error { c.segs = append(c.segs, s); return nil }
func (c *collectSink) SubmitFileEnd(fe FileEnd) error         { c.ends = append(c.ends, fe); return nil }
