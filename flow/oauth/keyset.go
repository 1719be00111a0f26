package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// keySet holds a provider's signing keys from its JWKS URI. It is fetched
// before the first code exchange, so that a key endpoint that is down stops
// the flow before the code is spent, and again when a token names a key it
// does not hold, as after a key rotation.
//
// It stands in for go-oidc's RemoteKeySet, which can neither fetch ahead of
// the exchange nor bound what it reads, and whose errors carry the
// provider's answer.
type keySet struct {
	p   *Provider
	url string

	mu   sync.Mutex
	keys []jose.JSONWebKey
}

// ready fetches the keys if none are held yet.
func (k *keySet) ready(ctx context.Context) error {
	if len(k.held()) > 0 {
		return nil
	}
	return k.refresh(ctx)
}

func (k *keySet) held() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// refresh replaces the keys with those the provider publishes now. Keys
// this package cannot use (unknown types, encryption keys) are skipped, as a
// JWKS may hold them next to the signing keys.
func (k *keySet) refresh(ctx context.Context) error {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := k.p.getJSON(ctx, k.url, nil, &set); err != nil {
		return fmt.Errorf("fetching signing keys: %w: %w", flow.ErrProviderUnavailable, err)
	}

	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if json.Unmarshal(raw, &jwk) != nil || !jwk.Valid() || !jwk.IsPublic() || jwk.Use == "enc" {
			continue
		}
		keys = append(keys, jwk)
	}
	if len(keys) == 0 {
		return fmt.Errorf("fetching signing keys: %w: no usable key at %s",
			flow.ErrProviderUnavailable, k.url)
	}

	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// VerifySignature implements oidc.KeySet: it returns the payload of a token
// signed by one of the provider's keys. A key it does not hold makes it
// fetch the keys again; if that fails, the failure is noted in ctx.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	algs := make([]jose.SignatureAlgorithm, len(supportedAlgs))
	for i, a := range supportedAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("parsing ID token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("ID token must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID

	if payload, ok := verifyWith(k.held(), jws, kid); ok {
		return payload, nil
	}
	if err := k.refresh(ctx); err != nil {
		noteFailure(ctx, err)
		return nil, err
	}
	if payload, ok := verifyWith(k.held(), jws, kid); ok {
		return payload, nil
	}
	return nil, errors.New("ID token is signed by no key of the provider")
}

// verifyWith checks jws against the keys named kid, or all keys if the
// token names none.
func verifyWith(keys []jose.JSONWebKey, jws *jose.JSONWebSignature, kid string) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// A failureNote carries a key fetch failure out of go-oidc's Verify, whose
// error keeps only the text of it.
type failureNote struct{ err error }

type noteKey struct{}

// withFailureNote returns ctx with a note that noteFailure fills in.
func withFailureNote(ctx context.Context) (context.Context, *failureNote) {
	n := &failureNote{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func noteFailure(ctx context.Context, err error) {
	if n, ok := ctx.Value(noteKey{}).(*failureNote); ok {
		n.err = err
	}
}
