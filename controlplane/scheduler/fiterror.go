package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FitError says why no node could take a pod.
type FitError struct {
	NumNodes int
	// Reasons counts nodes per failure reason; a node can add to more
	// than one reason (e.g. both Insufficient cpu and memory).
	Reasons map[string]int
}

// Error reads like Kubernetes': "0/3 nodes are available: 2 node(s) didn't
// match Pod's node selector, 1 Insufficient memory." The most common
// reason comes first; equal counts are ordered by reason.
func (e *FitError) Error() string {
	if e.NumNodes == 0 {
		return "0/0 nodes are available: no nodes registered."
	}
	type entry struct {
		reason string
		n      int
	}
	entries := make([]entry, 0, len(e.Reasons))
	for r, n := range e.Reasons {
		entries = append(entries, entry{r, n})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.reason, b.reason))
	})
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available", e.NumNodes)
	for i, en := range entries {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%d %s", sep, en.n, en.reason)
	}
	b.WriteString(".")
	return b.String()
}
