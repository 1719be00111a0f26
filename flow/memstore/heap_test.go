package memstore

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestTimeHeapOrder pushes times in random order, popping some on the way,
// and checks that every pop returns the earliest entry held.
func TestTimeHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h timeHeap
	var held []time.Time
	for i := range 2000 {
		at := time.Unix(int64(rng.IntN(500)), 0)
		h.push(timed{at: at, key: "k"})
		held = append(held, at)
		if i%3 != 0 {
			continue
		}
		slices.SortFunc(held, time.Time.Compare)
		if got := h.pop().at; !got.Equal(held[0]) {
			t.Fatalf("pop %d = %v; want the earliest, %v", i, got, held[0])
		}
		held = held[1:]
	}
	for h.Len() > 0 {
		slices.SortFunc(held, time.Time.Compare)
		if got := h.pop().at; !got.Equal(held[0]) {
			t.Fatalf("draining: pop = %v; want %v", got, held[0])
		}
		held = held[1:]
	}
}
