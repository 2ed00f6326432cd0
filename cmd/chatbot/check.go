package main

import (
	"context"
	"log/slog"
)

func (m *Main) check(ctx context.Context, cfg *Config, log *slog.Logger) error { return nil }
