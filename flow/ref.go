package flow

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ref is the subset of a Bot Framework ConversationReference a link carries:
// enough for the handler to bind a flow to one channel, conversation and user,
// and for a signal to reach the bot.
type Ref struct {
	ChannelID    string       `json:"channelId"`
	ServiceURL   string       `json:"serviceUrl"`
	Conversation Conversation `json:"conversation"`
	User         Account      `json:"user"`
	Bot          *Account     `json:"bot,omitempty"`
}

// Conversation names the conversation a flow belongs to.
type Conversation struct {
	ID       string `json:"id"`
	IsGroup  bool   `json:"isGroup,omitempty"`
	TenantID string `json:"tenantId,omitempty"`
}

// Account is a user or bot on a channel.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// maxIDLen bounds every identifier in a Ref. Channel IDs in Teams run to a few
// hundred bytes; anything longer is not a real reference.
const maxIDLen = 512

// Validate reports whether the reference names a channel, a conversation, a
// user and a service URL, each of sane length.
func (r Ref) Validate() error {
	fields := []struct{ name, val string }{
		{"channelId", r.ChannelID},
		{"conversation.id", r.Conversation.ID},
		{"user.id", r.User.ID},
	}
	for _, f := range fields {
		if err := checkID(f.name, f.val); err != nil {
			return err
		}
	}

	u, err := url.Parse(r.ServiceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: ref.serviceUrl must be an absolute http(s) URL", ErrBadToken)
	}
	if len(r.ServiceURL) > 2048 {
		return fmt.Errorf("%w: ref.serviceUrl too long", ErrBadToken)
	}
	return nil
}

// Key is the channel, conversation and user a flow is bound to.
type Key struct {
	ChannelID      string `json:"channelId"`
	ConversationID string `json:"conversationId"`
	UserID         string `json:"userId"`
}

// Key returns the binding of the reference.
func (r Ref) Key() Key {
	return Key{ChannelID: r.ChannelID, ConversationID: r.Conversation.ID, UserID: r.User.ID}
}

// Validate reports whether all three parts are present and of sane length.
func (k Key) Validate() error {
	if err := checkID("channelId", k.ChannelID); err != nil {
		return err
	}
	if err := checkID("conversationId", k.ConversationID); err != nil {
		return err
	}
	return checkID("userId", k.UserID)
}

func checkID(name, val string) error {
	switch {
	case val == "":
		return fmt.Errorf("%w: %s is required", ErrBadRequest, name)
	case len(val) > maxIDLen:
		return fmt.Errorf("%w: %s is too long", ErrBadRequest, name)
	case !utf8.ValidString(val):
		return fmt.Errorf("%w: %s is not UTF-8", ErrBadRequest, name)
	case strings.ContainsFunc(val, unicode.IsControl):
		// IDs travel in headers to the site; a line break would split one.
		return fmt.Errorf("%w: %s holds control characters", ErrBadRequest, name)
	}
	return nil
}
