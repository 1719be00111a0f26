//go:build !unix

package redistest

// Pause freezes the server; here it cannot, and skips the test.
func (s *Server) Pause() { s.tb.Skip("pausing a server needs a Unix system") }

// Resume lets a paused server go on.
func (s *Server) Resume() {}
