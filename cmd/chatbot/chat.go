package main

import (
	"context"
	"log/slog"
)

func (m *Main) chat(ctx context.Context, cfg *Config, log *slog.Logger) error { return nil }
