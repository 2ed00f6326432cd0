//go:build !(linux && (amd64 || arm64))

package store

import "errors"

// evict is only written for Linux on 64-bit amd64 and arm64 (the system
// call's arguments differ elsewhere).
func evict(string) error { return errors.ErrUnsupported }
