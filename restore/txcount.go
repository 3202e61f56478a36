package restore

import (
	"sort"

	"github.com/binarc/binarc/replication"
)

// txTally counts the transactions a plan applies, file by file, as the
// planner scans them: the total of each file and a mark every markEvery
// transactions, enough to say how many a replica has applied at a
// position without keeping every transaction's end (a week of binlog
// holds hundreds of millions) or reading the files again.
type txTally struct {
	files []tallyFile // in plan order
}

type tallyFile struct {
	timeline, file string
	total          uint64
	marks          []txMark // ascending
}

// txMark: n transactions of the file end at or before end.
type txMark struct{ end, n uint64 }

const markEvery = 256

// add counts a transaction the plan applies, ending at end.
func (t *txTally) add(timeline, file string, end uint64) {
	if n := len(t.files); n == 0 || t.files[n-1].timeline != timeline || t.files[n-1].file != file {
		t.files = append(t.files, tallyFile{timeline: timeline, file: file})
	}
	f := &t.files[len(t.files)-1]
	f.total++
	if f.total%markEvery == 0 {
		f.marks = append(f.marks, txMark{end: end, n: f.total})
	}
}

// total is how many transactions the plan applies on timeline tl, or on
// every timeline when tl is empty.
func (t *txTally) total(tl string) uint64 {
	var n uint64
	for _, f := range t.files {
		if tl == "" || f.timeline == tl {
			n += f.total
		}
	}
	return n
}

// applied is how many of timeline tl's transactions end at or before at,
// to within markEvery.
func (t *txTally) applied(tl string, at replication.Position) uint64 {
	var n uint64
	for _, f := range t.files {
		if f.timeline != tl {
			continue
		}
		c := replication.CompareBinlogNames(f.file, at.File)
		if c > 0 {
			break
		}
		if c < 0 {
			n += f.total
			continue
		}
		i := sort.Search(len(f.marks), func(i int) bool { return f.marks[i].end > at.Offset })
		if i > 0 {
			n += f.marks[i-1].n
		}
		break
	}
	return n
}
