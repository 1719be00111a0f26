package caddymodule

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// LinkKey is a key the bot signs tokens with: a shared secret or a public key.
type LinkKey struct {
	// ID is the key's kid. Tokens naming a kid are checked only with the
	// key of that ID; set it while rotating keys.
	ID string `json:"id,omitempty"`
	// Secret is a shared secret for HS256, at least 32 bytes, taken as raw
	// bytes. Use {env.NAME} or {file.PATH} to keep it out of the config.
	Secret string `json:"secret,omitempty"`
	// PublicKey is the path of a PEM file with the bot's public key:
	// Ed25519 (EdDSA), ECDSA P-256 (ES256) or RSA of 2048 bits or more
	// (RS256).
	PublicKey string `json:"public_key,omitempty"`
}

// Pages brands the user's pages and may replace them with the operator's
// html/template files. docs/pages.md describes the pages and their data.
type Pages struct {
	// Title names the site in the page header and the window title.
	// Default: the host name the browser used, like example.com.
	Title string `json:"title,omitempty"`
	// BotName names the bot in the instructions, like "Contoso Helper":
	// "Paste this number into your chat with Contoso Helper". Default:
	// "the bot", in the page's language.
	BotName string `json:"bot_name,omitempty"`
	// Logo is an image URL for the header: https, or a path on this site.
	// The pages' Content-Security-Policy allows images from its origin.
	Logo string `json:"logo,omitempty"`
	// Color is the accent colour of the buttons, the number's frame and the
	// top border, #rgb or #rrggbb. Text on it is white or black, whichever
	// reads better. Default: #0b57d0.
	Color string `json:"color,omitempty"`
	// Templates replace pages by name (continue, finish, message) with
	// html/template files. A file of only {{define "content"}} keeps the
	// built-in layout and styles; any other file is the whole page. Each
	// file is tried with sample data when the configuration loads.
	Templates map[string]string `json:"templates,omitempty"`
}

// engineConfig builds the engine's configuration from the handler's.
func (h *Handler) engineConfig(ctx caddy.Context) (*flow.Config, error) {
	cfg := &flow.Config{
		Prefix:         h.Prefix,
		Audience:       h.Audience,
		Deliver:        flow.Deliver(h.Deliver),
		Digits:         h.MagicNumber.Digits,
		CodeTTL:        durationOr(h.MagicNumber.TTL, 0),
		MaxAttempts:    h.MagicNumber.MaxAttempts,
		Retention:      durationOr(h.Retention, 0),
		MaxDeliveryAge: durationOr(h.MaxDeliveryAge, 0),
		Logger:         slogger(ctx),
		LogIDs:         h.LogIDs,
		Observer:       newMetrics(ctx),
		ClientIP:       clientIP,
	}
	if len(h.TrustedChannels) > 0 {
		cfg.TrustedChannels = h.TrustedChannels
		h.logger.Warn("trusted_channels: flows from these channels complete WITHOUT a magic "+
			"number; anyone who opens such a link completes it for the user it names",
			zap.Strings("channels", h.TrustedChannels))
	}
	limits, err := h.RateLimit.limits()
	if err != nil {
		return nil, fmt.Errorf("loading rate limits: %w", err)
	}
	cfg.Limits = limits
	if h.InsecureTestClock {
		cfg.TestClock = &flow.OffsetClock{}
		cfg.Now = cfg.TestClock.Now
		h.logger.Warn("INSECURE: insecure_test_clock lets any holder of the bot key move " +
			"this handler's clock; never use it in production")
	}

	steps := []struct {
		what string
		do   func(caddy.Context, *flow.Config) error
	}{
		{"loading link keys", h.loadVerifier},
		{"loading state key", h.loadKeyring},
		{"loading store", h.loadStore},
		{"loading flows", h.loadFlows},
		{"loading signals", h.loadSignals},
		{"loading pages", h.loadPages},
	}
	for _, s := range steps {
		if err := s.do(ctx, cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return cfg, nil
}

func (h *Handler) loadVerifier(_ caddy.Context, cfg *flow.Config) error {
	if len(h.LinkKeys) == 0 {
		return errors.New("at least one link_key is required")
	}
	keys := make([]flow.LinkKey, 0, len(h.LinkKeys))
	for i, lk := range h.LinkKeys {
		k, err := lk.load()
		if err != nil {
			return fmt.Errorf("link key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}

	v, err := flow.NewVerifier(flow.VerifierConfig{
		Keys:       keys,
		Issuer:     h.Issuer,
		MaxLinkTTL: durationOr(h.MaxLinkTTL, 0),
		Now:        cfg.Now,
	})
	cfg.Verifier = v
	return err
}

func (lk LinkKey) load() (flow.LinkKey, error) {
	switch {
	case lk.Secret != "" && lk.PublicKey != "":
		return flow.LinkKey{}, errors.New("give a secret or a public key, not both")
	case lk.Secret != "":
		secret, err := resolveSecret(lk.Secret)
		if err != nil {
			return flow.LinkKey{}, err
		}
		return flow.SecretKey(lk.ID, secret)
	case lk.PublicKey != "":
		pem, err := os.ReadFile(lk.PublicKey)
		if err != nil {
			return flow.LinkKey{}, fmt.Errorf("reading public key: %w", err)
		}
		return flow.PublicKey(lk.ID, pem)
	}
	return flow.LinkKey{}, errors.New("a secret or a public key is required")
}

// stateKeyName is where a made state key is kept in Caddy's storage.
const stateKeyName = "bot_handoff/state.key"

// loadKeyring resolves the configured state key, or loads the one kept in
// Caddy's storage, making it once if there is none yet.
func (h *Handler) loadKeyring(ctx caddy.Context, cfg *flow.Config) error {
	var master []byte
	var err error
	if h.StateKey != "" {
		master, err = resolveSecret(h.StateKey)
	} else {
		master, err = storedStateKey(ctx)
	}
	if err != nil {
		return err
	}
	cfg.Keys, err = flow.NewKeyring(master)
	return err
}

// storedStateKey reads the state key from Caddy's storage, making it under
// the storage's lock if absent, so that instances sharing the storage agree.
func storedStateKey(ctx caddy.Context) ([]byte, error) {
	st := ctx.Storage()
	key, err := st.Load(ctx, stateKeyName)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", stateKeyName, err)
	}

	if err := st.Lock(ctx, stateKeyName); err != nil {
		return nil, fmt.Errorf("locking %s: %w", stateKeyName, err)
	}
	defer func() { _ = st.Unlock(ctx, stateKeyName) }()
	if key, err := st.Load(ctx, stateKeyName); err == nil {
		return key, nil
	}

	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("making state key: %w", err)
	}
	if err := st.Store(ctx, stateKeyName, key); err != nil {
		return nil, fmt.Errorf("storing %s: %w", stateKeyName, err)
	}
	return key, nil
}

func (h *Handler) loadStore(ctx caddy.Context, cfg *flow.Config) error {
	var mod any
	var err error
	if h.StoreRaw == nil {
		mod, err = ctx.LoadModuleByID("http.handlers.bot_handoff.stores.storage", json.RawMessage("{}"))
	} else {
		mod, err = ctx.LoadModule(h, "StoreRaw")
	}
	if err != nil {
		return err
	}
	h.store = mod.(StoreModule)
	if _, shared := h.store.(*RedisStore); shared && h.StateKey == "" {
		h.logger.Warn("store redis without state_key: instances that do not share Caddy's " +
			"storage each make a state key of their own, and a flow started on one fails on " +
			"the others; set the same state_key on every instance")
	}
	cfg.Store, err = h.store.Store(h.namespace())
	h.flows = cfg.Store
	return err
}

// namespace keeps the flows of this handler apart from those of other
// handlers sharing a store: it follows the audience, or else the prefix, so
// that it stays the same across reloads.
func (h *Handler) namespace() string {
	id := h.Audience
	if id == "" {
		id = "prefix " + strings.TrimSuffix(cmp.Or(h.Prefix, flow.DefaultPrefix), "/")
	}
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

func (h *Handler) loadFlows(ctx caddy.Context, cfg *flow.Config) error {
	if len(h.FlowsRaw) == 0 {
		return errors.New("at least one flow (site, oauth, payment) is required")
	}
	mods, err := ctx.LoadModule(h, "FlowsRaw")
	if err != nil {
		return err
	}

	cfg.Flows = map[string]flow.FlowConfig{}
	for _, m := range mods.([]any) {
		fm := m.(FlowModule)
		name := fm.FlowName()
		if _, dup := cfg.Flows[name]; dup {
			return fmt.Errorf("flow %q is configured twice", name)
		}
		cfg.Flows[name] = fm.FlowConfig()
	}
	return nil
}

func (h *Handler) loadSignals(ctx caddy.Context, cfg *flow.Config) error {
	if len(h.SignalsRaw) == 0 {
		h.logger.Warn("no signal configured: the bot learns of flows only through the bot API")
		return nil
	}
	mods, err := ctx.LoadModule(h, "SignalsRaw")
	if err != nil {
		return err
	}

	seen := map[string]bool{}
	for _, m := range mods.([]any) {
		s := m.(SignalModule).Signal()
		if seen[s.ID()] {
			return fmt.Errorf("signal %q is configured twice", s.ID())
		}
		seen[s.ID()] = true
		cfg.Signals = append(cfg.Signals, s)
	}
	return nil
}

func (h *Handler) loadPages(_ caddy.Context, cfg *flow.Config) error {
	overrides := map[string]string{}
	templates := h.Pages.Templates
	switch h.Finish.Mode {
	case "", "builtin":
	case "template":
		if h.Finish.Template == "" {
			return errors.New("finish template needs a file")
		}
		templates = merge(templates, map[string]string{flow.PageFinish: h.Finish.Template})
	case "proxy":
		if h.Finish.Path == "" || h.Finish.Path[0] != '/' {
			return errors.New("finish proxy needs a path on the site, like /done")
		}
		cfg.Finish = flow.Finish{Mode: flow.FinishProxy, Path: h.Finish.Path, SetVar: setVar}
	default:
		return fmt.Errorf("finish mode %q must be builtin, template or proxy", h.Finish.Mode)
	}

	for name, file := range templates {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("reading %s page template: %w", name, err)
		}
		overrides[name] = string(b)
	}
	pages, err := flow.NewPages(flow.Brand{
		Title: h.Pages.Title, BotName: h.Pages.BotName, LogoURL: h.Pages.Logo, Color: h.Pages.Color,
	}, overrides)
	cfg.Pages = pages
	return err
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// resolveSecret resolves {env.*} and {file.*} placeholders in a secret,
// once, at provision. An empty result is an error, so that a missing
// environment variable is not taken as an empty key.
func resolveSecret(s string) ([]byte, error) {
	out, err := caddy.NewReplacer().ReplaceOrErr(s, true, true)
	if err != nil {
		return nil, fmt.Errorf("resolving secret: %w", err)
	}
	if out == "" {
		return nil, errors.New("secret is empty")
	}
	return []byte(out), nil
}
