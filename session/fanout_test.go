package session

import (
	"context"
	"testing"
	"time"

	"github.com/pgshard/pgshard/catalog"
)

// TestFanoutGateOrder checks the gate's admission rule: a reservation waits
// while it does not fit, later ones needing a node it waits for queue
// behind it, later ones on other nodes go first, and a waiter that gives up
// lets those behind it in.
func TestFanoutGateOrder(t *testing.T) {
	a, b, c := catalog.Node{Name: "a", Port: 1}, catalog.Node{Name: "b", Port: 1}, catalog.Node{Name: "c", Port: 1}
	g := newFanoutGate(1)
	ctx := context.Background()

	releaseA, err := g.reserve(ctx, map[catalog.Node]int{a: 1})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		release func()
		err     error
	}
	start := func(ctx context.Context, need map[catalog.Node]int) chan result {
		ch := make(chan result, 1)
		go func() {
			r, err := g.reserve(ctx, need)
			ch <- result{r, err}
		}()
		// Wait until it queued (or was granted), so that arrival order is
		// the order of the calls.
		deadline := time.Now().Add(10 * time.Second)
		for {
			g.mu.Lock()
			queued := false
			for _, w := range g.waiting {
				if len(w.need) == len(need) {
					queued = true
					for n := range need {
						if _, ok := w.need[n]; !ok {
							queued = false
						}
					}
				}
			}
			g.mu.Unlock()
			if queued || len(ch) > 0 || time.Now().After(deadline) {
				return ch
			}
			time.Sleep(time.Millisecond)
		}
	}
	pending := func(name string, ch chan result) {
		t.Helper()
		select {
		case r := <-ch:
			t.Fatalf("%s: granted (%v), want it waiting", name, r.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	granted := func(name string, ch chan result) func() {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
			return r.release
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting, want it granted", name)
			return nil
		}
	}

	abCtx, cancelAB := context.WithCancel(ctx)
	ab := start(abCtx, map[catalog.Node]int{a: 1, b: 1})
	pending("a+b while a is reserved", ab)
	bOnly := start(ctx, map[catalog.Node]int{b: 1})
	pending("b behind a waiting a+b", bOnly)
	releaseC := granted("c, which no earlier waiter needs", start(ctx, map[catalog.Node]int{c: 1}))

	// The a+b waiter gives up: b, queued behind it, is let in.
	cancelAB()
	if r := <-ab; r.err == nil {
		t.Fatal("a+b: granted after its context ended")
	}
	releaseB := granted("b after a+b gave up", bOnly)

	// Releases let the next waiter in, once each.
	ab2 := start(ctx, map[catalog.Node]int{a: 1, b: 1})
	pending("a+b while a and b are reserved", ab2)
	releaseA()
	releaseA() // a second call is a no-op
	pending("a+b while b is reserved", ab2)
	releaseB()
	granted("a+b after both were released", ab2)()
	releaseC()

	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.reserved) != 0 || len(g.waiting) != 0 {
		t.Fatalf("after every release: reserved %v, %d waiting", g.reserved, len(g.waiting))
	}
}
