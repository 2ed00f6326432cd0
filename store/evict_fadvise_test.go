//go:build linux && (amd64 || arm64)

package store

import (
	"os"
	"syscall"
)

// evict drops the file at path from the page cache (posix_fadvise
// DONTNEED), so that the next read comes from the disk, as at a cold start.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	const dontNeed = 4 // POSIX_FADV_DONTNEED
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, dontNeed, 0, 0); errno != 0 {
		return errno
	}
	return nil
}
