package memstore

import "time"

// timed is a key due at a time; timeHeap orders them earliest first.
type timed struct {
	at  time.Time
	key string
}

// timeHeap is a binary min-heap of timed entries. It is written out rather
// than built on container/heap, whose interface boxes every entry pushed
// into an allocation of its own.
type timeHeap []timed

func (h timeHeap) Len() int { return len(h) }

// push adds t.
func (h *timeHeap) push(t timed) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].at.Before(s[parent].at) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

// pop removes and returns the earliest entry; the heap must not be empty.
func (h *timeHeap) pop() timed {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = timed{} // let the key go
	s = s[:last]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s[l].at.Before(s[least].at) {
			least = l
		}
		if r < len(s) && s[r].at.Before(s[least].at) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}
