package main

import "context"

func (m *Main) health(ctx context.Context) error { return nil }
