// Package botstate is the bot_state signal: it writes each event into the
// bot's state through the Bot Framework State REST API v3, where a bot
// reads it on the user's next turn.
//
// A delivery reads the state record (GET), puts the event under one
// property of its data, leaving every other key as the bot wrote it, and
// writes the record back (POST) with the eTag it read. If another writer
// changed the record in between, the API answers 412 and the delivery reads,
// merges and writes again.
//
// The property always holds the newest event: a repeated delivery of the
// event already there writes nothing, and an event older than the one there
// is not written over it. So retries never duplicate an event, and late
// retries never undo a newer one.
package botstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Defaults of the configuration.
const (
	// DefaultTokenURL is the Microsoft identity platform's token endpoint
	// for bots registered with the Bot Framework.
	DefaultTokenURL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
	// DefaultScope is the OAuth scope of Bot Framework APIs.
	DefaultScope = "https://api.botframework.com/.default"
	// DefaultProperty is the data property events are written under.
	DefaultProperty = "handoff"
	// DefaultTimeout bounds each request to the token endpoint and the API.
	DefaultTimeout = 15 * time.Second
)

// Data names which of the bot's state records events go to.
type Data string

// The state records of a conversation reference.
const (
	// PrivateData is the user's data in one conversation:
	// {channelId}/conversations/{conversationId}/users/{userId}.
	PrivateData Data = "private"
	// UserData is the user's data across conversations:
	// {channelId}/users/{userId}.
	UserData Data = "user"
	// ConversationData is shared by every user of a conversation:
	// {channelId}/conversations/{conversationId}.
	ConversationData Data = "conversation"
)

// Config configures a Signal. Endpoint, AppID and AppPassword are required.
type Config struct {
	// Endpoint is the State API's base URL, like https://state.example.com;
	// requests go to {Endpoint}/v3/botstate/... It must be https, or http
	// to a loopback address.
	Endpoint string
	// AppID and AppPassword are the bot's credentials for the OAuth client
	// credentials grant.
	AppID       string
	AppPassword string
	// TokenURL is the OAuth token endpoint. Default: DefaultTokenURL.
	TokenURL string
	// Scope is the OAuth scope asked for. Default: DefaultScope.
	Scope string
	// Property is the data property the event is written under.
	// Default: DefaultProperty.
	Property string
	// Data is the state record written to. Default: PrivateData.
	Data Data
	// Client makes the requests, to the token endpoint too; redirects are
	// not followed. Default: a client with DefaultTimeout.
	Client *http.Client
	// Now is the clock, for Retry-After dates. Default: time.Now.
	Now func() time.Time
}

// Signal writes events into the bot's state. It is safe for concurrent use.
type Signal struct {
	endpoint string
	property string
	data     Data
	client   *http.Client
	tokens   *tokens
	records  recordLocks
	shared   flow.Locker
	now      func() time.Time
}

// New checks cfg, fills in defaults and returns a Signal.
func New(cfg Config) (*Signal, error) {
	endpoint, err := checkURL("endpoint", cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	tokenURL, err := checkURL("token URL", or(cfg.TokenURL, DefaultTokenURL))
	if err != nil {
		return nil, err
	}
	if cfg.AppID == "" || cfg.AppPassword == "" {
		return nil, errors.New("bot_state: an app ID and an app password are required")
	}
	data := or(cfg.Data, PrivateData)
	if data != PrivateData && data != UserData && data != ConversationData {
		return nil, fmt.Errorf("bot_state data %q must be %s, %s or %s",
			data, PrivateData, UserData, ConversationData)
	}

	// A redirect followed would turn the POST into a GET, and a write into
	// a read that seems to succeed; a State API answers where it is asked.
	client := *or(cfg.Client, &http.Client{Timeout: DefaultTimeout})
	client.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}

	s := &Signal{
		endpoint: endpoint,
		property: or(cfg.Property, DefaultProperty),
		data:     data,
		client:   &client,
		now:      cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tokens = newTokens(&clientcredentials.Config{
		ClientID:     cfg.AppID,
		ClientSecret: cfg.AppPassword,
		TokenURL:     tokenURL,
		Scopes:       []string{or(cfg.Scope, DefaultScope)},
		// The Microsoft identity platform takes the secret in the form;
		// saying so spares the library's probing of both styles.
		AuthStyle: oauth2.AuthStyleInParams,
	}, s.client)
	return s, nil
}

// checkURL checks an endpoint the bot's credentials or tokens are sent to:
// https, or http only to this machine, so that no secret crosses a network
// in the clear. It returns the URL without a trailing slash.
func checkURL(what, raw string) (string, error) {
	// The endpoint names the signal in logs and stored deliveries, so it
	// may carry no credentials.
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("bot_state %s must be an absolute URL without user or query", what)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return "", fmt.Errorf("bot_state %s %q must be https (http only to a loopback address)",
			what, raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// or returns v, or def if v is the zero value.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ID implements flow.Signal: the endpoint and the state record, which name
// where deliveries go.
func (s *Signal) ID() string { return "bot_state " + s.endpoint + " " + string(s.data) }

// Kind implements flow.Signal.
func (s *Signal) Kind() string { return "bot_state" }

// UseLocker implements flow.LockUser: with l, the deliveries of instances
// sharing a store take turns on the first write of a record, which the API
// cannot make conditional.
func (s *Signal) UseLocker(l flow.Locker) { s.shared = l }

// maxConflicts bounds how often one delivery reads and writes again after
// the state changed under it; the outbox then retries it later.
const maxConflicts = 5

// firstWriteLease is how long a shared lock on a record's first write lasts
// if the instance holding it dies: well past one delivery attempt, a read,
// a token and a write, each bounded by DefaultTimeout.
const firstWriteLease = 4 * DefaultTimeout

// Deliver implements flow.Signal: it merges ev into the bot's state.
//
// A 412 answer (the state changed since it was read) is retried at once, a
// few times. Errors the outbox retries later: 5xx answers, timeouts, 401 (a
// refused token, which is dropped so the next attempt fetches another), and
// 429 or 503 with Retry-After, as flow.RetryAfterError. Errors wrapping
// flow.ErrPermanent: state over the size limit, data that is not a JSON
// object, and a request the API calls bad (400, 413).
func (s *Signal) Deliver(ctx context.Context, ev *flow.Event) error {
	target, err := s.recordURL(ev.Ref)
	if err != nil {
		return err
	}
	event, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event: %w", err)
	}
	unlock, err := s.records.lock(ctx, target)
	if err != nil {
		return fmt.Errorf("waiting for another delivery to the record: %w", err)
	}
	defer unlock()

	held, release := false, func() {}
	defer func() { release() }()
	for range maxConflicts {
		cur, err := s.read(ctx, target)
		if err != nil {
			return fmt.Errorf("reading bot state: %w", err)
		}

		// A record never written takes any write: hold other instances
		// off it, then read again, as one may have written meanwhile.
		if cur.ETag == anyETag && s.shared != nil && !held {
			release, err = s.shared.Lock(ctx, target, firstWriteLease)
			if err != nil {
				return fmt.Errorf("waiting for another instance's delivery to the record: %w", err)
			}
			held = true
			continue
		}

		next, write, err := merge(cur, s.property, ev, event)
		if !write || err != nil {
			return err
		}

		err = s.write(ctx, target, next)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing bot state: %w", err)
		}
		return nil
	}
	return fmt.Errorf("writing bot state: %w", ErrConflict)
}

// recordURL returns the URL of the state record ev.Ref names.
func (s *Signal) recordURL(ref flow.Ref) (string, error) {
	ch, conv, user := ref.ChannelID, ref.Conversation.ID, ref.User.ID
	needConv, needUser := s.data != UserData, s.data != ConversationData
	if ch == "" || (needConv && conv == "") || (needUser && user == "") {
		return "", fmt.Errorf("%w: the event's reference lacks an ID the %s data needs",
			flow.ErrPermanent, s.data)
	}

	u := s.endpoint + "/v3/botstate/" + segment(ch)
	if needConv {
		u += "/conversations/" + segment(conv)
	}
	if needUser {
		u += "/users/" + segment(user)
	}
	return u, nil
}

// segment escapes one path segment, dots too where a server would take them
// for the current or parent directory and move the request elsewhere.
func segment(id string) string {
	if id == "." || id == ".." {
		return strings.Repeat("%2E", len(id))
	}
	return url.PathEscape(id)
}

// Interface guards
var (
	_ flow.Signal   = (*Signal)(nil)
	_ flow.LockUser = (*Signal)(nil)
)
