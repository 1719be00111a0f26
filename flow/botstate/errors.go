package botstate

import (
	"errors"
	"fmt"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Errors a caller can test with errors.Is. Those that no retry can fix wrap
// flow.ErrPermanent, so the outbox gives their delivery up at once.
var (
	// ErrTooLarge means the data with the event would pass MaxData.
	ErrTooLarge = fmt.Errorf("botstate: data over the %d byte limit: %w", MaxData, flow.ErrPermanent)
	// ErrNotObject means the record's data is not a JSON object, so the
	// event has nowhere to go beside the bot's keys.
	ErrNotObject = fmt.Errorf("botstate: data is not a JSON object: %w", flow.ErrPermanent)
	// ErrRejected means the API called the request bad (400 or 413).
	ErrRejected = fmt.Errorf("botstate: request rejected: %w", flow.ErrPermanent)

	// ErrConflict means the record changed between every read and write.
	ErrConflict = errors.New("botstate: record kept changing")
	// ErrUnauthorized means the API refused the bearer token (401).
	ErrUnauthorized = errors.New("botstate: token refused")
	// ErrToken means no token could be had from the token endpoint, as
	// when the app password is wrong.
	ErrToken = errors.New("botstate: fetching token")
)

// errStale is a 412 answer: the record changed since it was read.
var errStale = errors.New("botstate: stale eTag")

// StatusError is an answer of the API that is not a success. Its body is
// never kept: it is the other service's and may hold anything.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("State API answered %d", e.Code) }
