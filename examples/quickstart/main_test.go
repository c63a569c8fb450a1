package main

import (
	"context"
	"testing"
	"time"
)

// TestQuickstart runs the whole walkthrough, as `go run ./examples/quickstart`
// does: it fails when any step (counts, repair, replica check) fails.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		t.Fatal(err)
	}
}
