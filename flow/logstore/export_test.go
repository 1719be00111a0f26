package logstore

// BreakLog closes the segment file under the writer, so that its next write
// fails as a failing disk's would.
func BreakLog(s *Store) { _ = s.seg.f.Close() }

// Batches returns how many batches the store has made durable.
func Batches(s *Store) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}
