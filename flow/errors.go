package flow

import (
	"errors"
	"fmt"
)

// Errors a caller can test with errors.Is. The HTTP layer maps them to
// statuses and to the JSON error codes of the bot API.
var (
	// ErrNotFound means the store has no entry for a key.
	ErrNotFound = errors.New("flow: not found")
	// ErrConflict means a conditional store write lost a race.
	ErrConflict = errors.New("flow: conflicting update")
	// ErrStoreUnavailable means the store could not be reached.
	ErrStoreUnavailable = errors.New("flow: store unavailable")

	// ErrBadToken means a link or API token failed a check.
	ErrBadToken = errors.New("flow: invalid token")
	// ErrTokenExpired means a link or API token is past its expiry.
	ErrTokenExpired = errors.New("flow: token expired")
	// ErrUnknownFlow means a link names a flow the handler does not have.
	ErrUnknownFlow = errors.New("flow: unknown flow")
	// ErrLinkUsed means a link already started a flow in another browser.
	ErrLinkUsed = errors.New("flow: link already used")
	// ErrSuperseded means a newer link replaced this flow.
	ErrSuperseded = errors.New("flow: superseded by a newer link")
	// ErrNotBound means the browser does not hold the flow's cookie.
	ErrNotBound = errors.New("flow: browser not bound to flow")

	// ErrNoFlow means no flow exists for a conversation and user.
	ErrNoFlow = errors.New("flow: no flow")
	// ErrInvalidCode means a magic number did not match.
	ErrInvalidCode = errors.New("flow: invalid code")
	// ErrMalformedCode means the text pasted holds no number of the right
	// length; it is refused without counting as a wrong try.
	ErrMalformedCode = errors.New("flow: no number of the right length in the code")
	// ErrLocked means too many wrong codes were tried.
	ErrLocked = errors.New("flow: locked after too many attempts")
	// ErrExpired means the flow or its magic number expired.
	ErrExpired = errors.New("flow: expired")
	// ErrNotCompleted means the user has not finished the flow yet.
	ErrNotCompleted = errors.New("flow: not completed")
	// ErrFinished means the flow already reached a final state.
	ErrFinished = errors.New("flow: already finished")

	// ErrBadRequest means a request is malformed.
	ErrBadRequest = errors.New("flow: bad request")
	// ErrProvider means a provider (identity, payment) answered with an error.
	ErrProvider = errors.New("flow: provider error")
	// ErrProviderUnavailable means a provider could not be reached or
	// answered with a server error. It is an ErrProvider; the flow stays
	// pending, so the user can try again.
	ErrProviderUnavailable = fmt.Errorf("%w: unavailable", ErrProvider)
)
