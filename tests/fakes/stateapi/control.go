package stateapi

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Fail makes the next n state requests answer status, with a Retry-After
// header if retryAfter is set; n < 0 keeps failing until Recover.
func (s *Server) Fail(status int, retryAfter string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failAfter, s.failLeft = status, retryAfter, n
}

// Recover turns the failure switch off.
func (s *Server) Recover() { s.Fail(0, "", 0) }

// SetDelay makes every state request wait d before it is handled; a caller
// that gives up first changes nothing.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// LoseAnswers makes the next n writes take effect and then answer 500, as
// when a gateway fails after the service committed.
func (s *Server) LoseAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseLeft = n
}

// RaceWrites makes another writer change the record right after each of
// the next n reads, setting key to a number, so that a write with the eTag
// just read is stale.
func (s *Server) RaceWrites(n int, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raceLeft, s.raceKey = n, key
}

// RevokeTokens makes every token issued so far invalid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Put sets key to value in the record's data, as the bot itself does, with
// a new eTag, and returns that eTag.
func (s *Server) Put(bag Bag, key string, value any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(bag, key, value)
}

func (s *Server) putLocked(bag Bag, key string, value any) string {
	data := map[string]json.RawMessage{}
	if rec, ok := s.records[bag]; ok && rec.data != nil {
		_ = json.Unmarshal(rec.data, &data)
	}
	v, err := json.Marshal(value)
	if err != nil {
		panic("stateapi: value for " + strconv.Quote(key) + ": " + err.Error())
	}
	data[key] = v
	b, _ := json.Marshal(data)
	return s.store(bag, b).eTag
}

// PutRaw replaces the record's data with raw JSON, as the bot may write it.
func (s *Server) PutRaw(bag Bag, raw string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store(bag, []byte(raw)).eTag
}

// Record returns the record's data by key, and its eTag; nil and "*" if it
// was never written.
func (s *Server) Record(bag Bag) (map[string]json.RawMessage, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[bag]
	if !ok {
		return nil, "*"
	}
	data := map[string]json.RawMessage{}
	_ = json.Unmarshal(rec.data, &data)
	return data, rec.eTag
}

// Writes returns the writes accepted over HTTP, in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Tokens returns every token issued, for tests that check none leaked.
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}
