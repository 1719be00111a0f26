package stripefake

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// idempotencyLife is how long Stripe keeps an idempotency key.
const idempotencyLife = 24 * time.Hour

// idemEntry is the first request under an idempotency key and its answer.
type idemEntry struct {
	method, path string
	params       url.Values
	answer       answer
	at           time.Time
}

// idempotent runs a POST under an idempotency key as Stripe does: the
// first answer is kept, server errors included, and replayed for the same
// request with Idempotent-Replayed: true; the same key with another request
// is refused. Answers to parameter errors are not kept, so a corrected
// request under the same key runs.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, key string, h apiHandler) {
	if e, ok := s.idem[key]; ok && s.now().Sub(e.at) < idempotencyLife {
		if e.method != r.Method || e.path != r.URL.Path || !sameParams(e.params, r.PostForm) {
			writeError(w, &apiError{status: 400, Type: "idempotency_error",
				Message: "Keys for idempotent requests can only be used with the same " +
					"parameters they were first used with."})
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeAnswer(w, e.answer)
		return
	}

	a := s.run(h, r)
	if a.saved {
		s.idem[key] = &idemEntry{method: r.Method, path: r.URL.Path, params: r.PostForm,
			answer: a, at: s.now()}
	}
	writeAnswer(w, a)
}

func sameParams(a, b url.Values) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}
