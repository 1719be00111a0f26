//go:build !linux

package caddymodule

import "github.com/caddyserver/certmagic"

// newFileWriter has no fast path on this platform: writes go through
// certmagic.FileStorage, each synced on its own.
func newFileWriter(*certmagic.FileStorage, string) storageWriter { return nil }
