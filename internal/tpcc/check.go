package tpcc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
)

// Check tests the consistency conditions 1 to 10 and 12 of clause 3.3.2 on
// the data in db (a population of c), and condition 11 too when initial is set (it holds only
// before any Delivery). It returns one error naming every violation (the
// first few of each condition), nil when all hold.
func Check(ctx context.Context, db *sql.DB, c Config, initial bool) error {
	ck := &checker{db: db}
	ck.run(ctx, c, initial)
	return errors.Join(ck.errs...)
}

// checker collects violations; errors from the queries themselves are
// violations too (a condition that cannot be read does not hold).
type checker struct {
	db    *sql.DB
	errs  []error
	count map[int]int
}

// violate records a violation of condition n, at most five per condition.
func (ck *checker) violate(n int, format string, args ...any) {
	if ck.count == nil {
		ck.count = map[int]int{}
	}
	ck.count[n]++
	if ck.count[n] <= 5 {
		ck.errs = append(ck.errs, fmt.Errorf("tpcc consistency condition %d: "+format, append([]any{n}, args...)...))
	}
}

// key is a composite key of up to three integers (warehouse, district,
// order or customer).
type key [3]int64

// values reads a query whose first n columns are integers forming the key
// and whose last column is a decimal (or NULL, read as absent).
func (ck *checker) values(ctx context.Context, n int, query string) map[key]*big.Rat {
	rows, err := ck.db.QueryContext(ctx, query)
	if err != nil {
		ck.errs = append(ck.errs, fmt.Errorf("tpcc: %s: %w", query, err))
		return nil
	}
	defer rows.Close()
	out := map[key]*big.Rat{}
	for rows.Next() {
		var k key
		var v sql.NullString
		dest := make([]any, 0, n+1)
		for i := 0; i < n; i++ {
			dest = append(dest, &k[i])
		}
		if err := rows.Scan(append(dest, &v)...); err != nil {
			ck.errs = append(ck.errs, fmt.Errorf("tpcc: %s: %w", query, err))
			return nil
		}
		if !v.Valid {
			continue
		}
		r, ok := new(big.Rat).SetString(v.String)
		if !ok {
			ck.errs = append(ck.errs, fmt.Errorf("tpcc: %s: %q is not a number", query, v.String))
			return nil
		}
		out[k] = r
	}
	if err := rows.Err(); err != nil {
		ck.errs = append(ck.errs, fmt.Errorf("tpcc: %s: %w", query, err))
	}
	return out
}

// equal checks, for every key of want, that got has the same value.
func (ck *checker) equal(cond int, what string, want, got map[key]*big.Rat) {
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			g = new(big.Rat)
		}
		if w.Cmp(g) != 0 {
			ck.violate(cond, "%s %v: %s <> %s", what, k, w.FloatString(2), g.FloatString(2))
		}
	}
}

// zero checks that a count query returns 0.
func (ck *checker) zero(ctx context.Context, cond int, what, query string) {
	var n int64
	if err := ck.db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		ck.errs = append(ck.errs, fmt.Errorf("tpcc: %s: %w", query, err))
		return
	}
	if n != 0 {
		ck.violate(cond, "%d %s", n, what)
	}
}

func (ck *checker) run(ctx context.Context, c Config, initial bool) {
	// 1. W_YTD = sum(D_YTD).
	wYTD := ck.values(ctx, 1, `SELECT w_id, w_ytd FROM warehouse`)
	ck.equal(1, "warehouse W_YTD vs sum(D_YTD)", wYTD, ck.values(ctx, 1, `SELECT d_w_id, sum(d_ytd) FROM district GROUP BY d_w_id`))

	// 2. D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID).
	next := ck.values(ctx, 2, `SELECT d_w_id, d_id, d_next_o_id - 1 FROM district`)
	ck.equal(2, "district D_NEXT_O_ID - 1 vs max(O_ID)", next, ck.values(ctx, 2, `SELECT o_w_id, o_d_id, max(o_id) FROM orders GROUP BY o_w_id, o_d_id`))
	maxNO := ck.values(ctx, 2, `SELECT no_w_id, no_d_id, max(no_o_id) FROM new_order GROUP BY no_w_id, no_d_id`)
	for k, v := range maxNO {
		if n, ok := next[k]; !ok || n.Cmp(v) != 0 {
			ck.violate(2, "district %v: max(NO_O_ID) %s <> D_NEXT_O_ID - 1", k, v.FloatString(0))
		}
	}

	// 3. max(NO_O_ID) - min(NO_O_ID) + 1 = count(NEW-ORDER rows).
	ck.zero(ctx, 3, "districts whose new orders are not contiguous", `SELECT count(*) FROM (
		SELECT no_w_id, no_d_id FROM new_order GROUP BY no_w_id, no_d_id
		HAVING max(no_o_id) - min(no_o_id) + 1 <> count(*)) s`)

	// 4. sum(O_OL_CNT) = count(ORDER-LINE rows).
	ck.equal(4, "district sum(O_OL_CNT) vs order lines",
		ck.values(ctx, 2, `SELECT o_w_id, o_d_id, sum(o_ol_cnt) FROM orders GROUP BY o_w_id, o_d_id`),
		ck.values(ctx, 2, `SELECT ol_w_id, ol_d_id, count(*) FROM order_line GROUP BY ol_w_id, ol_d_id`))

	// 5. O_CARRIER_ID is null iff the order has a NEW-ORDER row.
	ck.zero(ctx, 5, "orders whose carrier disagrees with new_order", `SELECT count(*) FROM orders o
		LEFT JOIN new_order n ON n.no_w_id = o.o_w_id AND n.no_d_id = o.o_d_id AND n.no_o_id = o.o_id
		WHERE (o.o_carrier_id IS NULL) <> (n.no_o_id IS NOT NULL)`)

	// 6. O_OL_CNT = the order's number of lines.
	ck.equal(6, "order O_OL_CNT vs its lines",
		ck.values(ctx, 3, `SELECT o_w_id, o_d_id, o_id, o_ol_cnt FROM orders`),
		ck.values(ctx, 3, `SELECT ol_w_id, ol_d_id, ol_o_id, count(*) FROM order_line GROUP BY ol_w_id, ol_d_id, ol_o_id`))

	// 7. OL_DELIVERY_D is null iff O_CARRIER_ID is null.
	ck.zero(ctx, 7, "order lines whose delivery date disagrees with the carrier", `SELECT count(*) FROM order_line ol
		JOIN orders o ON o.o_w_id = ol.ol_w_id AND o.o_d_id = ol.ol_d_id AND o.o_id = ol.ol_o_id
		WHERE (ol.ol_delivery_d IS NULL) <> (o.o_carrier_id IS NULL)`)

	// 8. W_YTD = sum(H_AMOUNT) of the warehouse.
	ck.equal(8, "warehouse W_YTD vs sum(H_AMOUNT)", wYTD, ck.values(ctx, 1, `SELECT h_w_id, sum(h_amount) FROM history GROUP BY h_w_id`))

	// 9. D_YTD = sum(H_AMOUNT) of the district.
	ck.equal(9, "district D_YTD vs sum(H_AMOUNT)",
		ck.values(ctx, 2, `SELECT d_w_id, d_id, d_ytd FROM district`),
		ck.values(ctx, 2, `SELECT h_w_id, h_d_id, sum(h_amount) FROM history GROUP BY h_w_id, h_d_id`))

	// 10. C_BALANCE = sum(delivered OL_AMOUNT) - sum(H_AMOUNT) of the
	// customer; 12. C_BALANCE + C_YTD_PAYMENT = sum(delivered OL_AMOUNT).
	balance := ck.values(ctx, 3, `SELECT c_w_id, c_d_id, c_id, c_balance FROM customer`)
	ytd := ck.values(ctx, 3, `SELECT c_w_id, c_d_id, c_id, c_ytd_payment FROM customer`)
	delivered := ck.values(ctx, 3, `SELECT o.o_w_id, o.o_d_id, o.o_c_id, sum(ol.ol_amount) FROM orders o
		JOIN order_line ol ON ol.ol_w_id = o.o_w_id AND ol.ol_d_id = o.o_d_id AND ol.ol_o_id = o.o_id
		WHERE ol.ol_delivery_d IS NOT NULL GROUP BY o.o_w_id, o.o_d_id, o.o_c_id`)
	paid := ck.values(ctx, 3, `SELECT h_c_w_id, h_c_d_id, h_c_id, sum(h_amount) FROM history GROUP BY h_c_w_id, h_c_d_id, h_c_id`)
	for k, b := range balance {
		d, p := orZero(delivered[k]), orZero(paid[k])
		if want := new(big.Rat).Sub(d, p); want.Cmp(b) != 0 {
			ck.violate(10, "customer %v: C_BALANCE %s <> delivered %s - paid %s", k, b.FloatString(2), d.FloatString(2), p.FloatString(2))
		}
		if sum := new(big.Rat).Add(b, orZero(ytd[k])); sum.Cmp(d) != 0 {
			ck.violate(12, "customer %v: C_BALANCE + C_YTD_PAYMENT %s <> delivered %s", k, sum.FloatString(2), d.FloatString(2))
		}
	}

	// 11. count(ORDER) - count(NEW-ORDER) = the initially delivered orders
	// (2,100 per district at full size).
	if initial {
		orders := ck.values(ctx, 2, `SELECT o_w_id, o_d_id, count(*) FROM orders GROUP BY o_w_id, o_d_id`)
		newOrders := ck.values(ctx, 2, `SELECT no_w_id, no_d_id, count(*) FROM new_order GROUP BY no_w_id, no_d_id`)
		want := big.NewRat(int64(c.undeliveredFrom()-1), 1)
		for k, o := range orders {
			if got := new(big.Rat).Sub(o, orZero(newOrders[k])); got.Cmp(want) != 0 {
				ck.violate(11, "district %v: %s orders without a new order, want %s", k, got.FloatString(0), want.FloatString(0))
			}
		}
	}
}

func orZero(r *big.Rat) *big.Rat {
	if r == nil {
		return new(big.Rat)
	}
	return r
}
