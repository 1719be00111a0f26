package logstore

// BreakLog closes the segment file under the writer, so that its next write
// fails as a failing disk's would.
func BreakLog(s *Store) { _ = s.seg.f.Close() }
