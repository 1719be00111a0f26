package botstate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// MaxData is the most the State API keeps in one record's data, as JSON.
const MaxData = 32 * 1024

// BotData is a state record as the State API reads and writes it.
type BotData struct {
	// Data is the bot's JSON object, or null for a record never written.
	Data json.RawMessage `json:"data"`
	// ETag is the record's version; "*" for a record never written, and
	// as a condition, "*" matches any version.
	//
	// So the API has no condition "only if still absent": a write to a
	// record read as never written overwrites whatever another writer
	// created meanwhile. Within a process, deliveries to one record take
	// turns (see recordLocks).
	//
	// Instances sharing a store take turns through a flow.Locker on it
	// (see Signal.UseLocker). The bot itself can still race the handler on
	// a record's first write, and the later write wins; a bot avoids that
	// by writing its record once, early.
	ETag string `json:"eTag"`
}

// anyETag is the eTag of a record never written.
const anyETag = "*"

// merge returns cur with the event put under property, and whether it needs
// writing: not if the property holds this event already (an earlier attempt
// wrote it, though its answer was lost), nor if it holds a newer one. Every
// other key of the data keeps its value as the bot wrote it, numbers and
// strings verbatim.
func merge(cur *BotData, property string, ev *flow.Event, event []byte) (*BotData, bool, error) {
	data := map[string]json.RawMessage{}
	if raw := bytes.TrimSpace(cur.Data); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if json.Unmarshal(raw, &data) != nil {
			return nil, false, ErrNotObject
		}
	}

	if there, ok := data[property]; ok && !replaces(ev, there) {
		return nil, false, nil
	}
	data[property] = event

	out, err := encode(data)
	if err != nil {
		return nil, false, fmt.Errorf("encoding bot state: %w", err)
	}
	if len(out) > MaxData {
		return nil, false, fmt.Errorf("%w: %d bytes with the event", ErrTooLarge, len(out))
	}
	return &BotData{Data: out, ETag: cur.ETag}, true, nil
}

// replaces reports whether ev should take the place of the value there: it
// does unless there is this same event, or an event created after it. A
// value that is no event, which the bot may have written, is replaced.
//
// Events are ordered by their creation time, from the clocks of the
// handlers that made them; two events of one flow are normally far more
// apart than those clocks.
func replaces(ev *flow.Event, there json.RawMessage) bool {
	var old struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"createdAt"`
	}
	if json.Unmarshal(there, &old) != nil || old.ID == "" {
		return true
	}
	return old.ID != ev.ID && !old.CreatedAt.After(ev.CreatedAt)
}

// encode returns v as compact JSON without HTML escaping, so the bot's
// strings keep every character as written.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
