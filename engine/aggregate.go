package engine

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/pgshard/pgshard/internal/sqlerr"
	"github.com/pgshard/pgshard/plan"
)

// Aggregate is a Scatter whose select list is only count, sum, min and max
// calls: every shard returns one row, and the rows are added up (or
// compared) in Go. Shards run in parallel outside a transaction, one after
// the other in one.
//
// An Aggregate is made once per plan (planner.Build), immutable and shared by
// every connection that runs it.
type Aggregate struct {
	// Target is what the statement runs on.
	Target *plan.Target
	// Shards picks the shards the arguments leave and gives their
	// statements.
	Shards ShardQueries
	// Aggregates are the merge steps of the output columns, in order.
	Aggregates []plan.Aggregate
}

func (a *Aggregate) Inputs() []Primitive { return nil }

func (a *Aggregate) Exec(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Result, error) {
	return execRows(a.Query(ctx, vc, nargs))
}

func (a *Aggregate) Query(ctx context.Context, vc Cursor, nargs []driver.NamedValue) (driver.Rows, error) {
	sc, err := bindScatter(ctx, vc, a.Target, a.Shards, nargs)
	if err != nil {
		return nil, err
	}
	return a.queryBound(ctx, vc, sc)
}

func (a *Aggregate) queryBound(ctx context.Context, vc Cursor, sc *scatterCall) (driver.Rows, error) {
	n := len(sc.shards)
	partial := make([]*Buffered, n)
	err := eachShard(vc, n, func(i int) error {
		rows, err := sc.open(ctx, vc, i)
		if err != nil {
			return err
		}
		partial[i], err = ReadAll(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	cols := partial[0].Cols
	out := make([]driver.Value, len(cols))
	for c, agg := range a.Aggregates {
		vals := make([]driver.Value, 0, n)
		for _, part := range partial {
			if len(part.Data) != 1 {
				return nil, sqlerr.New(sqlerr.InternalError, "a shard returned %d rows for an aggregate", len(part.Data))
			}
			vals = append(vals, part.Data[0][c])
		}
		v, err := combine(agg.Kind, cols[c].DBType, vals)
		if err != nil {
			return nil, err
		}
		out[c] = v
	}
	return &Buffered{Cols: cols, Data: [][]driver.Value{out}}, nil
}

func (a *Aggregate) Describe(ctx context.Context, vc Cursor, nargs []driver.NamedValue, d *Description) error {
	return describeScatter(ctx, vc, a.Target, a.Shards, nargs, d, a.merged)
}

func (a *Aggregate) merged(vc Cursor, shards []int, args []any) (string, func(int) (string, error), []driver.NamedValue) {
	return aggregated(vc, shards, args)
}

// combine merges the shards' partial results of one aggregate column, given
// the column's database type name (as pgx reports it).
func combine(kind plan.AggregateKind, dbType string, vals []driver.Value) (driver.Value, error) {
	var acc driver.Value
	for _, v := range vals {
		if v == nil {
			continue
		}
		if acc == nil {
			acc = v
			continue
		}
		var err error
		switch kind {
		case plan.AggCount, plan.AggSum:
			acc, err = add(dbType, acc, v)
		case plan.AggMin, plan.AggMax:
			var c int
			c, err = compare(dbType, acc, v)
			if err == nil && ((kind == plan.AggMin && c > 0) || (kind == plan.AggMax && c < 0)) {
				acc = v
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if acc == nil && kind == plan.AggCount {
		return int64(0), nil
	}
	return acc, nil
}

func add(dbType string, a, b driver.Value) (driver.Value, error) {
	switch x := a.(type) {
	case int64:
		y, ok := b.(int64)
		if !ok {
			break
		}
		s := x + y
		if (s > x) != (y > 0) {
			return nil, sqlerr.New(sqlerr.NumericOutOfRange, "bigint out of range")
		}
		return s, nil
	case float64:
		if y, ok := b.(float64); ok {
			return x + y, nil
		}
	case string:
		if dbType == "NUMERIC" {
			if y, ok := b.(string); ok {
				return addNumeric(x, y)
			}
		}
	}
	return nil, sqlerr.Unsupported("merging sum() of type %s across shards is not supported", strings.ToLower(dbType))
}

// addNumeric adds two numeric values in their text form exactly, keeping the
// larger scale as PostgreSQL does.
func addNumeric(a, b string) (driver.Value, error) {
	if a == "NaN" || b == "NaN" {
		return "NaN", nil
	}
	if strings.Contains(a, "Infinity") || strings.Contains(b, "Infinity") {
		if a == b || !strings.Contains(b, "Infinity") {
			return a, nil
		}
		if !strings.Contains(a, "Infinity") {
			return b, nil
		}
		return "NaN", nil
	}
	ai, as, err := parseDecimal(a)
	if err != nil {
		return nil, err
	}
	bi, bs, err := parseDecimal(b)
	if err != nil {
		return nil, err
	}
	scale := max(as, bs)
	ai.Mul(ai, pow10(scale-as))
	bi.Mul(bi, pow10(scale-bs))
	return formatDecimal(ai.Add(ai, bi), scale), nil
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

func parseDecimal(s string) (*big.Int, int, error) {
	intPart, frac, _ := strings.Cut(s, ".")
	i, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return nil, 0, sqlerr.New(sqlerr.InvalidTextRepr, "invalid numeric value %q from a shard", s)
	}
	return i, len(frac), nil
}

func formatDecimal(i *big.Int, scale int) string {
	neg := i.Sign() < 0
	digits := new(big.Int).Abs(i).String()
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// compare orders two non-NULL values of one column as PostgreSQL does, for
// the types whose order does not depend on a collation.
func compare(dbType string, a, b driver.Value) (int, error) {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp3(x < y, x > y), nil
		}
	case float64:
		if y, ok := b.(float64); ok {
			// PostgreSQL sorts NaN above every other value.
			switch {
			case math.IsNaN(x) && math.IsNaN(y):
				return 0, nil
			case math.IsNaN(x):
				return 1, nil
			case math.IsNaN(y):
				return -1, nil
			}
			return cmp3(x < y, x > y), nil
		}
	case bool:
		if y, ok := b.(bool); ok {
			return cmp3(!x && y, x && !y), nil
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return cmp3(x.Before(y), x.After(y)), nil
		}
		if y, ok := b.(string); ok {
			return -infinityRank(y), nil
		}
	case string:
		switch dbType {
		case "NUMERIC":
			if y, ok := b.(string); ok {
				return compareNumeric(x, y)
			}
		case "DATE", "TIMESTAMP", "TIMESTAMPTZ":
			if _, ok := b.(time.Time); ok {
				return infinityRank(x), nil
			}
			if y, ok := b.(string); ok {
				return cmp3(infinityRank(x) < infinityRank(y), infinityRank(x) > infinityRank(y)), nil
			}
		}
	}
	return 0, sqlerr.Unsupported("merging min()/max() of type %s across shards is not supported yet (its order may depend on a collation)", strings.ToLower(dbType))
}

func infinityRank(s string) int {
	if s == "-infinity" {
		return -1
	}
	return 1
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

func compareNumeric(a, b string) (int, error) {
	rank := func(s string) (int, bool) {
		switch s {
		case "NaN":
			return 2, true
		case "Infinity":
			return 1, true
		case "-Infinity":
			return -1, true
		}
		return 0, false
	}
	ra, sa := rank(a)
	rb, sb := rank(b)
	if sa || sb {
		return cmp3(ra < rb, ra > rb), nil
	}
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("pgshard: invalid numeric values %q, %q from shards", a, b)
	}
	return x.Cmp(y), nil
}

// eachShard runs run(0..n-1): all at once outside a transaction; one after
// the other inside one, whose connection per node runs one query at a time.
func eachShard(vc Cursor, n int, run func(i int) error) error {
	if vc.InTransaction() {
		for i := 0; i < n; i++ {
			if err := run(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	parallel(n, func(i int) { errs[i] = run(i) })
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parallel runs f(0..n-1) on goroutines of their own and waits for them all.
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}
