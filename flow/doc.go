// Package flow is the engine of caddy-bothandoff: it checks the links a bot
// sends, keeps a flow record per conversation and user, binds it to the
// browser that opened the link, runs the provider (a task on the site, an
// OAuth sign-in, a payment), makes the magic number, and tells the bot.
//
// The package imports nothing of Caddy. The Caddy adapter builds an Engine
// from its configuration and calls Engine.ServeHTTP for every request; any
// other net/http server can do the same.
//
// A bot creates a link with SignLink, sends it to the user, waits for a
// signal or polls the status API, and checks the number the user pastes with
// the verify API. See the Example functions.
package flow
