package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func init() {
	caddy.RegisterModule(adminOutbox{})
}

// running holds the engines of the handlers provisioned in this process, so
// the admin API can show their outboxes.
var running = struct {
	sync.Mutex
	handlers []*Handler
}{}

func addRunning(h *Handler) {
	running.Lock()
	defer running.Unlock()
	running.handlers = append(running.handlers, h)
}

func removeRunning(h *Handler) {
	running.Lock()
	defer running.Unlock()
	running.handlers = slices.DeleteFunc(running.handlers, func(x *Handler) bool { return x == h })
}

// adminOutbox serves /bot_handoff/outbox on Caddy's admin API: GET lists
// each handler's pending and given-up deliveries (never the events), POST
// with ?id=ID (or without, for all) makes them due now.
type adminOutbox struct{}

// CaddyModule returns the Caddy module information.
func (adminOutbox) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.bot_handoff",
		New: func() caddy.Module { return new(adminOutbox) },
	}
}

// Routes implements caddy.AdminRouter.
func (a adminOutbox) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/bot_handoff/outbox", Handler: caddy.AdminHandlerFunc(a.serve)},
		{Pattern: "/bot_handoff/backup", Handler: caddy.AdminHandlerFunc(a.serveBackup)},
	}
}

// handlerOutbox is one handler's part of the answer.
type handlerOutbox struct {
	Handler    string             `json:"handler"`
	Prefix     string             `json:"prefix"`
	Deliveries []flow.OutboxEntry `json:"deliveries,omitempty"`
	Retried    int                `json:"retried,omitempty"`
}

func (a adminOutbox) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use GET or POST")}
	}

	running.Lock()
	handlers := slices.Clone(running.handlers)
	running.Unlock()

	out := []handlerOutbox{}
	for _, h := range handlers {
		ho := handlerOutbox{Handler: h.namespace(), Prefix: h.engine.Prefix()}
		var err error
		if r.Method == http.MethodPost {
			ho.Retried, err = h.engine.RetryNow(r.Context(), r.URL.Query().Get("id"))
		} else {
			ho.Deliveries, err = h.engine.Outbox(r.Context(), 1000)
		}
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
		}
		out = append(out, ho)
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

// backuper is a store that can copy itself while it serves: the storage
// store's log.
type backuper interface {
	Backup(w io.Writer, size func(int64)) (int64, error)
}

// serveBackup answers GET /bot_handoff/backup?handler=NAMESPACE with a
// consistent copy of that handler's log, as a snapshot.
func (a adminOutbox) serveBackup(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("use GET")}
	}
	ns := r.URL.Query().Get("handler")

	running.Lock()
	i := slices.IndexFunc(running.handlers, func(h *Handler) bool { return h.namespace() == ns })
	var st flow.Store
	if i >= 0 {
		st = running.handlers[i].flows
	}
	running.Unlock()

	if st == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound,
			Err: fmt.Errorf("no handler %q here; the outbox lists the handlers", ns)}
	}
	b, ok := st.(backuper)
	if !ok {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest,
			Err: fmt.Errorf("handler %q keeps no log: back up its store as it is", ns)}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, err := b.Backup(w, func(n int64) {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	})
	return err
}

// Interface guard
var _ caddy.AdminRouter = adminOutbox{}
