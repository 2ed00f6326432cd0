//go:build race

package telegram_test

// raceEnabled reports whether the tests run with the race detector, which
// makes copying large files many times slower.
const raceEnabled = true
