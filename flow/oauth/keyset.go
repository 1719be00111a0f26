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
	keys []signingKey
}

// A signingKey is a key of the set with its "issuer" member, which
// JSONWebKey does not keep. Entra's multi-tenant key sets give it to many
// keys: the issuer, or a template holding {tenantid}, of the tokens the key
// may sign (see checkTenant).
type signingKey struct {
	jose.JSONWebKey
	issuer string
}

// ready fetches the keys if none are held yet.
func (k *keySet) ready(ctx context.Context) error {
	if len(k.held()) > 0 {
		return nil
	}
	return k.refresh(ctx)
}

func (k *keySet) held() []signingKey {
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

	var keys []signingKey
	for _, raw := range set.Keys {
		if key, ok := parseKey(raw); ok {
			keys = append(keys, key)
		}
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

// parseKey reads a key of the set, and reports whether it is a public
// signing key. A key whose issuer member is not a string is refused, as the
// tokens it signs could not be held to it.
func parseKey(raw json.RawMessage) (signingKey, bool) {
	var jwk jose.JSONWebKey
	if json.Unmarshal(raw, &jwk) != nil || !jwk.Valid() || !jwk.IsPublic() || jwk.Use == "enc" {
		return signingKey{}, false
	}

	var extra struct {
		Issuer string `json:"issuer"`
	}
	if json.Unmarshal(raw, &extra) != nil {
		return signingKey{}, false
	}
	return signingKey{JSONWebKey: jwk, issuer: extra.Issuer}, true
}

// VerifySignature implements oidc.KeySet: it returns the payload of a token
// signed by one of the provider's keys, and notes that key's issuer member
// in ctx. A key it does not hold makes it fetch the keys again; if that
// fails, the failure is noted in ctx.
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

	if key, payload := verifyWith(k.held(), jws, kid); key != nil {
		noteIssuer(ctx, key.issuer)
		return payload, nil
	}
	if err := k.refresh(ctx); err != nil {
		noteFailure(ctx, err)
		return nil, err
	}
	if key, payload := verifyWith(k.held(), jws, kid); key != nil {
		noteIssuer(ctx, key.issuer)
		return payload, nil
	}
	return nil, errors.New("ID token is signed by no key of the provider")
}

// verifyWith checks jws against the keys named kid, or all keys if the
// token names none, and returns the key that verified it, or nil.
func verifyWith(keys []signingKey, jws *jose.JSONWebSignature, kid string) (*signingKey, []byte) {
	for i := range keys {
		key := &keys[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key.JSONWebKey); err == nil {
			return key, payload
		}
	}
	return nil, nil
}

// A keyNote carries out of go-oidc's Verify what it cannot return: a key
// fetch failure, of which its error keeps only the text, and the issuer
// member of the key that verified the token. Verify calls VerifySignature
// through the oidc.KeySet interface and hands back only the token, and the
// key set is shared by concurrent sign-ins, so the context of the one call
// is the place for both; verifying the signature again afterwards would
// cost a second check and could meet another key set after a refresh.
type keyNote struct {
	err    error
	issuer string
}

type noteKey struct{}

// withKeyNote returns ctx with a note that noteFailure and noteIssuer fill
// in.
func withKeyNote(ctx context.Context) (context.Context, *keyNote) {
	n := &keyNote{}
	return context.WithValue(ctx, noteKey{}, n), n
}

func noteFailure(ctx context.Context, err error) {
	if n, ok := ctx.Value(noteKey{}).(*keyNote); ok {
		n.err = err
	}
}

func noteIssuer(ctx context.Context, issuer string) {
	if n, ok := ctx.Value(noteKey{}).(*keyNote); ok {
		n.issuer = issuer
	}
}
