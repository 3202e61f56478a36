package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/binarc/binarc/restore"
)

// printChain shows the timelines a restore walks and the joins it
// crosses, with what was lost and what was errant at each.
func printChain(w io.Writer, p *restore.Plan) {
	if len(p.Steps) < 2 {
		return
	}
	fmt.Fprintln(w, "  chain:")
	for i, st := range p.Steps {
		fmt.Fprintf(w, "    timeline %s: %s to %s\n", st.Timeline, st.From, st.To)
		if i < len(p.Joins) {
			j := p.Joins[i]
			fmt.Fprintf(w, "    %s\n", j)
			if len(j.Lost) > 0 {
				fmt.Fprintf(w, "      lost at the switch (excluded): %s\n", strings.Join(j.Lost, ","))
			}
		}
	}
	for _, t := range p.Applied {
		fmt.Fprintf(w, "  already applied, left out: %s %s/%s:%d-%d\n", t.GTID, t.Timeline, t.File, t.Start, t.End)
	}
}
