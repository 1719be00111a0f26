//go:build unix

package redistest

import "syscall"

// Pause freezes the server without closing its connections, as a replica
// that falls behind: it answers nothing until Resume, or the test's end.
func (s *Server) Pause() {
	s.tb.Helper()
	if !s.signal(syscall.SIGSTOP) {
		s.tb.Fatalf("pausing %s: not running", s)
	}
	s.tb.Cleanup(s.Resume)
}

// Resume lets a paused server go on.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

// signal sends sig to the server's process, and reports whether it runs.
func (s *Server) signal(sig syscall.Signal) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	_ = s.cmd.Process.Signal(sig)
	return true
}
