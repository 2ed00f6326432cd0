package conversation

import "time"

// Clock is the time source of the pacer, so that tests can drive time by hand.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
	// AfterFunc calls f in its own goroutine once d has passed, as
	// time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a call of Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call. It reports false if f has already been started.
	Stop() bool
	// Reset makes f run (again) once d has passed from now, as
	// time.Timer.Reset does for a timer made by AfterFunc.
	Reset(d time.Duration) bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// AfterFunc returns time.AfterFunc(d, f).
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
