package flow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the engine's configuration.
const (
	DefaultPrefix         = "/handoff"
	DefaultCodeTTL        = 10 * time.Minute
	DefaultMaxAttempts    = 5
	DefaultFlowTTL        = 30 * time.Minute
	DefaultRetention      = 24 * time.Hour
	DefaultMaxDeliveryAge = 24 * time.Hour
)

// Deliver says what a signal carries.
type Deliver string

// The delivery modes.
const (
	// DeliverStatus sends the status only; the bot calls the verify API
	// with the number the user pastes to get the result.
	DeliverStatus Deliver = "status"
	// DeliverFull sends the magic number and the result, for a bot that
	// checks the number itself.
	DeliverFull Deliver = "full"
)

// Config configures an Engine. Verifier, Store, Keys and at least one flow
// are required; everything else has a default.
type Config struct {
	// Prefix is the path under which the handler serves its routes.
	Prefix string
	// Audience is what tokens must name in aud, like
	// "https://example.com/handoff". Default: the origin each request came
	// to, followed by the prefix.
	Audience string
	// Verifier checks link and API tokens.
	Verifier *Verifier
	// Store keeps flows and deliveries.
	Store Store
	// Keys seal secrets at rest and bind browsers.
	Keys *Keyring
	// Flows are the configured flows, by name.
	Flows map[string]FlowConfig
	// Signals tell the bot about completed, failed and expired flows. New
	// gives those that are LockUsers a Locker on the Store.
	Signals []Signal
	// Deliver says what signals carry. Default: DeliverStatus.
	Deliver Deliver

	// Digits is the length of magic numbers. Default: 6.
	Digits int
	// CodeTTL is how long a magic number lives after completion.
	CodeTTL time.Duration
	// MaxAttempts is how many wrong numbers fail a flow. Default: 5.
	MaxAttempts int
	// Retention is how long a finished flow's status stays readable.
	Retention time.Duration
	// MaxDeliveryAge is how long a delivery is retried before it is given up
	// (logged, counted and kept for the operator).
	MaxDeliveryAge time.Duration

	// Pages renders what the user sees.
	Pages *Pages
	// Finish says how the finish page is shown.
	Finish Finish

	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Rand is the source of randomness. Default: crypto/rand.Reader.
	Rand io.Reader
	// Logger receives the engine's logs. Default: discard.
	Logger *slog.Logger
	// LogIDs adds user and conversation IDs to log lines.
	LogIDs bool
	// Observer receives measurements. Default: none.
	Observer Observer
	// TestClock, when set, lets the bot API move the clock. Tests only.
	TestClock *OffsetClock

	// Limits bounds how fast clients open links and call verify.
	Limits Limits

	// TrustedChannels are channel IDs whose web views the channel itself
	// binds to the signed-in user, such as a task module that only that
	// user can open. Their flows complete without a magic number and the bot
	// verifies with an empty code. The risk: anyone who opens the link in
	// such a channel completes the flow for the user the link names, so the
	// channel, not the number, must keep other people out. Default: none.
	TrustedChannels []string
	// ClientIP returns the client's IP for rate limits. Default: the host of
	// the request's RemoteAddr. Behind proxies, give one that honours the
	// proxies the operator trusts.
	ClientIP func(*http.Request) string
}

// FlowConfig is one configured flow.
type FlowConfig struct {
	Provider Provider
	// TTL is how long a started flow may stay pending. Default: 30m.
	TTL time.Duration
}

// An Engine runs flows. It is safe for concurrent use.
type Engine struct {
	prefix   string
	audience string
	verify   *Verifier
	store    Store
	keys     *Keyring
	flows    map[string]FlowConfig
	sites    []*siteRoute
	signals  map[string]Signal
	deliver  Deliver

	digits      int
	codeTTL     time.Duration
	maxAttempts int
	retention   time.Duration
	maxAge      time.Duration

	pages  *Pages
	finish Finish

	now       func() time.Time
	rand      io.Reader
	log       *slog.Logger
	logIDs    bool
	obs       Observer
	testClock *OffsetClock

	startPerIP   *limiter
	startPerFlow *limiter
	verifyPerIP  *limiter
	clientIP     func(*http.Request) string
	trusted      map[string]bool

	// claimWarn lets the worker warn of a store it cannot reach once a
	// minute, not on every poll.
	claimWarn *rate.Limiter

	// contestWait and contestPoll time a contested return's wait for
	// another return of its flow.
	contestWait time.Duration
	contestPoll time.Duration

	wake chan struct{}
}

// New checks cfg, fills in defaults and returns an Engine.
func New(cfg Config) (*Engine, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}

	e := &Engine{
		prefix:       strings.TrimSuffix(or(cfg.Prefix, DefaultPrefix), "/"),
		audience:     cfg.Audience,
		verify:       cfg.Verifier,
		store:        cfg.Store,
		keys:         cfg.Keys,
		flows:        cfg.Flows,
		signals:      map[string]Signal{},
		deliver:      or(cfg.Deliver, DeliverStatus),
		digits:       or(cfg.Digits, DefaultDigits),
		codeTTL:      or(cfg.CodeTTL, DefaultCodeTTL),
		maxAttempts:  or(cfg.MaxAttempts, DefaultMaxAttempts),
		retention:    or(cfg.Retention, DefaultRetention),
		maxAge:       or(cfg.MaxDeliveryAge, DefaultMaxDeliveryAge),
		pages:        cfg.Pages,
		finish:       cfg.Finish,
		now:          cfg.Now,
		rand:         or[io.Reader](cfg.Rand, rand.Reader),
		log:          or(cfg.Logger, slog.New(slog.DiscardHandler)),
		logIDs:       cfg.LogIDs,
		obs:          or[Observer](cfg.Observer, nopObserver{}),
		testClock:    cfg.TestClock,
		startPerIP:   newLimiter(cfg.Limits.StartPerIP, DefaultStartPerIP),
		startPerFlow: newLimiter(cfg.Limits.StartPerFlow, DefaultStartPerFlow),
		verifyPerIP:  newLimiter(cfg.Limits.VerifyPerIP, DefaultVerifyPerIP),
		clientIP:     cfg.ClientIP,
		claimWarn:    rate.NewLimiter(rate.Every(time.Minute), 1),
		contestWait:  contestWait,
		contestPoll:  contestPoll,
		wake:         make(chan struct{}, 1),
	}
	if e.clientIP == nil {
		e.clientIP = remoteIP
	}
	e.trusted = map[string]bool{}
	for _, ch := range cfg.TrustedChannels {
		e.trusted[ch] = true
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.pages == nil {
		e.pages = DefaultPages()
	}
	locker := NewStoreLocker(e.store, e.keys, e.rand, e.log)
	for _, s := range cfg.Signals {
		e.signals[s.ID()] = s
		if u, ok := s.(LockUser); ok {
			u.UseLocker(locker)
		}
	}
	for name, fc := range cfg.Flows {
		if fc.TTL <= 0 {
			fc.TTL = DefaultFlowTTL
			e.flows[name] = fc
		}
		if site, ok := fc.Provider.(*Site); ok {
			e.sites = append(e.sites, &siteRoute{name: name, site: site})
		}
	}
	sortSites(e.sites)
	return e, nil
}

func (cfg *Config) check() error {
	switch {
	case cfg.Verifier == nil:
		return errors.New("a link verifier is required")
	case cfg.Store == nil:
		return errors.New("a store is required")
	case cfg.Keys == nil:
		return errors.New("a state keyring is required")
	case len(cfg.Flows) == 0:
		return errors.New("at least one flow is required")
	}
	if cfg.Digits != 0 && (cfg.Digits < MinDigits || cfg.Digits > MaxDigits) {
		return fmt.Errorf("magic number digits must be %d to %d", MinDigits, MaxDigits)
	}
	if cfg.Deliver != "" && cfg.Deliver != DeliverStatus && cfg.Deliver != DeliverFull {
		return fmt.Errorf("deliver must be %q or %q", DeliverStatus, DeliverFull)
	}
	if cfg.Prefix != "" && (!strings.HasPrefix(cfg.Prefix, "/") || cfg.Prefix == "/") {
		return fmt.Errorf("prefix %q must start with / and not be the root", cfg.Prefix)
	}
	for name, fc := range cfg.Flows {
		if !ValidFlowName(name) {
			return fmt.Errorf("flow name %q must be lower case letters, digits, - and _", name)
		}
		if fc.Provider == nil {
			return fmt.Errorf("flow %q has no provider", name)
		}
	}
	return nil
}

// or returns v, or def if v is the zero value.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Prefix returns the path prefix the engine serves.
func (e *Engine) Prefix() string { return e.prefix }

// Now returns the engine's current time.
func (e *Engine) Now() time.Time { return e.now() }

// audienceFor returns the audience tokens on r must name.
func (e *Engine) audienceFor(r *http.Request) string {
	if e.audience != "" {
		return e.audience
	}
	return origin(r) + e.prefix
}

// publicOrigin returns the origin to build URLs for the browser and for
// providers from: the configured audience's, so that a forged Host header
// cannot move a return URL elsewhere, or else the request's.
func (e *Engine) publicOrigin(r *http.Request) string {
	if o, ok := strings.CutSuffix(e.audience, e.prefix); ok && strings.Contains(o, "://") {
		return o
	}
	return origin(r)
}

// convID is the store key of a conversation and user under an audience: a
// MAC, so that store keys reveal no identifiers, and bound to the audience,
// so that two handlers sharing a store never see each other's flows.
func (e *Engine) convID(aud string, k Key) string {
	mac := e.keys.MAC("conv", aud, k.ChannelID, k.ConversationID, k.UserID)
	return b64(mac[:18])
}

// linkKey is the store key that marks a link as used.
func (e *Engine) linkKey(aud, jti string) string {
	mac := e.keys.MAC("jti", aud, jti)
	return keyLink + b64(mac[:18])
}

// browserMAC is what a record keeps of the browser's cookie.
func (e *Engine) browserMAC(token string) []byte { return e.keys.MAC("browser", token) }

// codeMAC is what a record keeps of its magic number.
func (e *Engine) codeMAC(flowID, code string) []byte {
	return e.keys.MAC("code", flowID, code)
}

// txn is what a change to a record asks of the store.
type txn struct {
	// write stores the changed record; without it nothing is written.
	write bool
	// ops are further writes, made atomically with the record.
	ops []Op
	// events are signals to deliver, queued atomically with the record.
	events []*Event
	// result is returned to the caller once the write succeeded.
	result error
}

// maxRaces bounds how often update retries after losing a race. Each retry
// means another writer made progress, so this is only reached under a storm
// of writes to one record.
const maxRaces = 64

// update reads the record at conv, lets change modify it, and writes it back
// with change's further ops and events, atomically; a lost race starts over
// with a fresh read. It returns the record as written.
func (e *Engine) update(ctx context.Context, conv string, change func(*Record,
	time.Time) (txn, error)) (*Record, error) {
	return e.updateFrom(ctx, conv, nil, change)
}

// updateFrom is update starting from a record the caller read already, so
// the step saves a read; a lost race reads afresh.
func (e *Engine) updateFrom(ctx context.Context, conv string, seen *Record,
	change func(*Record, time.Time) (txn, error)) (*Record, error) {
	key := flowKey(conv)
	for range maxRaces {
		rec := seen
		seen = nil
		if rec == nil {
			var err error
			if rec, err = e.read(ctx, key); err != nil {
				return nil, err
			}
		}

		now := e.now()
		before := rec.Status
		t, err := change(rec, now)
		if err != nil {
			return rec, err
		}
		if !t.write {
			if len(t.ops) > 0 {
				if err := e.store.Apply(ctx, t.ops...); err != nil {
					return rec, fmt.Errorf("writing flow timers: %w", err)
				}
			}
			return rec, t.result
		}

		rec.Updated = now
		ops, err := e.recordOps(rec, rec.rev, now, t)
		if err != nil {
			return nil, err
		}
		err = e.store.Apply(ctx, ops...)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("writing flow: %w", err)
		}

		e.transitioned(rec, before)
		if len(t.events) > 0 && len(e.signals) > 0 {
			e.kick() // deliveries were queued
		}
		return rec, t.result
	}
	return nil, fmt.Errorf("updating flow: %w", ErrConflict)
}

// read returns the record at key with its revision.
func (e *Engine) read(ctx context.Context, key string) (*Record, error) {
	ent, err := e.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoFlow
	}
	if err != nil {
		return nil, fmt.Errorf("reading flow: %w", err)
	}
	rec, err := unmarshalRecord(ent.Value)
	if err != nil {
		return nil, err
	}
	rec.rev = ent.Rev
	return rec, nil
}

// recordOps returns the ops writing rec at revision rev, with t's ops and
// its events' deliveries.
func (e *Engine) recordOps(rec *Record, rev uint64, now time.Time, t txn) ([]Op, error) {
	val, err := rec.marshal()
	if err != nil {
		return nil, err
	}
	ops := append([]Op{Update(flowKey(rec.Conv), rev, val, e.recordTTL(rec, now))}, t.ops...)
	for _, ev := range t.events {
		dops, err := e.deliveryOps(ev, now)
		if err != nil {
			return nil, err
		}
		ops = append(ops, dops...)
	}
	return ops, nil
}

// recordTTL keeps a record until its last deadline plus the retention.
func (e *Engine) recordTTL(rec *Record, now time.Time) time.Duration {
	end := rec.Deadline
	if rec.CodeExpires.After(end) {
		end = rec.CodeExpires
	}
	if ttl := end.Add(e.retention).Sub(now); ttl > time.Minute {
		return ttl
	}
	return time.Minute
}

// transitioned logs and counts a change of status. A new flow is logged at
// DEBUG, as Caddy logs what each request does; every flow gets an INFO line
// when it ends (completed, failed, expired, superseded, cancelled), and
// another when it is verified. A start's line took 7 % of Caddy's CPU
// during link starts.
func (e *Engine) transitioned(rec *Record, from Status) {
	if rec.Status == from {
		return
	}
	e.obs.FlowStatus(rec.Flow, rec.Kind, rec.Status)
	level := slog.LevelInfo
	if rec.Status == StatusPending {
		level = slog.LevelDebug
	}
	if !e.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []any{
		slog.String("flow_id", rec.ID), slog.String("flow", rec.Flow),
		slog.String("channel", rec.Ref.ChannelID), slog.String("status", string(rec.Status)),
	}
	if rec.Error != "" {
		attrs = append(attrs, slog.String("error", rec.Error))
	}
	if e.logIDs {
		attrs = append(attrs, slog.String("conversation", rec.Ref.Conversation.ID),
			slog.String("user", rec.Ref.User.ID))
	}
	e.log.Log(context.Background(), level, "flow "+string(rec.Status), attrs...)
}

// kick wakes the delivery worker without blocking.
func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// view returns what a provider sees of rec, with its state opened.
func (e *Engine) view(rec *Record, r *http.Request) (*Flow, error) {
	state, err := e.keys.Open(rec.State, "state:"+rec.ID)
	if err != nil {
		return nil, fmt.Errorf("opening provider state: %w", err)
	}
	f := &Flow{
		ID:       rec.ID,
		Handle:   rec.Handle().String(),
		Name:     rec.Flow,
		Ref:      rec.Ref,
		Data:     rec.Data,
		State:    state,
		Status:   rec.Status,
		Deadline: rec.Deadline,
		Now:      e.now(),
		Prefix:   e.prefix,
	}
	if r != nil {
		f.Origin = origin(r)
	}
	return f, nil
}

// seal seals a value bound to a purpose and a flow ID.
func (e *Engine) seal(value []byte, purpose, flowID string) ([]byte, error) {
	return e.keys.Seal(e.rand, value, purpose+":"+flowID)
}
