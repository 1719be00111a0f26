package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// The client both our handler and oauth2-proxy use at the mock provider.
const (
	idpClientID     = "bench-client"
	idpClientSecret = "bench-client-secret-0123456789"
)

// idp is mockoidc, an OpenID Connect provider with sessions, one-time codes
// and PKCE, behind a wrapper that serialises requests (its session store is
// a bare map), writes expires_in in seconds as real providers do, and adds
// up the time spent inside it, so that the provider's own time can be taken
// out of a callback's latency.
type idp struct {
	m    *mockoidc.MockOIDC
	mu   sync.Mutex
	busy atomic.Int64 // nanoseconds spent serving requests
}

func startIdP() (*idp, error) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		return nil, fmt.Errorf("creating mock provider: %w", err)
	}
	m.ClientID, m.ClientSecret = idpClientID, idpClientSecret
	p := &idp{m: m}
	if err := m.AddMiddleware(p.wrap); err != nil {
		return nil, fmt.Errorf("wrapping mock provider: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for mock provider: %w", err)
	}
	if err := m.Start(ln, nil); err != nil {
		return nil, fmt.Errorf("starting mock provider: %w", err)
	}
	return p, nil
}

func (p *idp) issuer() string { return p.m.Issuer() }

func (p *idp) stop() { _ = p.m.Shutdown() }

// spent returns the time the provider has spent serving requests so far.
func (p *idp) spent() time.Duration { return time.Duration(p.busy.Load()) }

func (p *idp) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		defer func() { p.busy.Add(int64(time.Since(began))) }()
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.URL.Path != mockoidc.TokenEndpoint {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		if ns, ok := body["expires_in"].(float64); ok {
			body["expires_in"] = int(time.Duration(ns) / time.Second)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(body)
	})
}
