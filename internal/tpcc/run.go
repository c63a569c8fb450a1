package tpcc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Kind is one of the five transaction types.
type Kind int

// The transaction types, in the order of their mix weights.
const (
	NewOrderKind Kind = iota
	PaymentKind
	OrderStatusKind
	DeliveryKind
	StockLevelKind
	kinds
)

func (k Kind) String() string {
	return [...]string{"new-order", "payment", "order-status", "delivery", "stock-level"}[k]
}

// mix is the minimum mix of clause 5.2.3 (45/43/4/4/4), cumulative.
var mix = [kinds]int{45, 88, 92, 96, 100}

// RunConfig says how long and with how many terminals Run drives the load.
type RunConfig struct {
	Terminals int
	Duration  time.Duration
	// Transactions, when positive, ends each terminal after that many
	// transactions (retries not counted), whatever is left of Duration.
	Transactions int
	Seed         uint64
	// Retries is how often a transaction that failed with a serialization
	// failure or a deadlock (40001, 40P01) is run again.
	Retries int
}

// Stats is what a run did. Errors holds the first errors that were neither
// retried nor the New-Order's intended rollback; a correct run has none.
type Stats struct {
	Done       [kinds]int
	RolledBack int // New-Orders rolled back on purpose (1%)
	Retried    int
	Failed     int
	Errors     []error
	Elapsed    time.Duration
}

// TpmC is the number of New-Order transactions committed per minute.
func (s *Stats) TpmC() float64 { return float64(s.Done[NewOrderKind]) / s.Elapsed.Minutes() }

func (s *Stats) String() string {
	return fmt.Sprintf("tpmC %.0f in %s: new-order %d (+%d rolled back), payment %d, order-status %d, delivery %d, stock-level %d; %d retried, %d failed",
		s.TpmC(), s.Elapsed.Round(time.Millisecond), s.Done[NewOrderKind], s.RolledBack, s.Done[PaymentKind], s.Done[OrderStatusKind],
		s.Done[DeliveryKind], s.Done[StockLevelKind], s.Retried, s.Failed)
}

// Run drives the mix from rc.Terminals goroutines, each with a home
// warehouse (terminal i has warehouse i mod W + 1), back to back until
// rc.Duration has passed, each terminal has run rc.Transactions, or ctx
// ends.
func Run(ctx context.Context, db *sql.DB, c Config, rc RunConfig) *Stats {
	ctx, cancel := context.WithTimeout(ctx, rc.Duration)
	defer cancel()
	var (
		mu    sync.Mutex
		total Stats
		wg    sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < rc.Terminals; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := NewTerminal(db, c, i%c.Warehouses+1, rc.Seed+uint64(i)*7919)
			var s Stats
			for n := 0; ctx.Err() == nil && (rc.Transactions <= 0 || n < rc.Transactions); n++ {
				t.runOne(ctx, rc.Retries, &s)
			}
			mu.Lock()
			defer mu.Unlock()
			for k := range s.Done {
				total.Done[k] += s.Done[k]
			}
			total.RolledBack += s.RolledBack
			total.Retried += s.Retried
			total.Failed += s.Failed
			for _, err := range s.Errors {
				if len(total.Errors) < 20 {
					total.Errors = append(total.Errors, err)
				}
			}
		}()
	}
	wg.Wait()
	total.Elapsed = time.Since(start)
	return &total
}

// runOne runs one transaction of the mix and records its outcome in s. A
// transaction cut short by the end of the run is not counted.
func (t *Terminal) runOne(ctx context.Context, retries int, s *Stats) {
	roll := t.g.between(1, 100)
	var k Kind
	for k = 0; roll > mix[k]; k++ {
	}
	for attempt := 0; ; attempt++ {
		var err error
		switch k {
		case NewOrderKind:
			err = t.NewOrder(ctx)
		case PaymentKind:
			err = t.Payment(ctx)
		case OrderStatusKind:
			err = t.OrderStatus(ctx)
		case DeliveryKind:
			_, err = t.Delivery(ctx)
		case StockLevelKind:
			_, err = t.StockLevel(ctx)
		}
		switch {
		case err == nil:
			s.Done[k]++
		case errors.Is(err, errRollback):
			s.RolledBack++
		case ctx.Err() != nil:
		case retryable(err) && attempt < retries:
			s.Retried++
			continue
		default:
			s.Failed++
			if len(s.Errors) < 5 {
				s.Errors = append(s.Errors, fmt.Errorf("%s: %w", k, err))
			}
		}
		return
	}
}

// retryable reports whether err is a serialization failure or a deadlock.
func retryable(err error) bool {
	var state interface{ SQLState() string }
	if !errors.As(err, &state) {
		return false
	}
	switch state.SQLState() {
	case "40001", "40P01":
		return true
	}
	return false
}
