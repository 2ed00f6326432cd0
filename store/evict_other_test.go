//go:build !linux

package store

import "errors"

// evict is only written for Linux.
func evict(string) error { return errors.ErrUnsupported }
