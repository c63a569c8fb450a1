package tpcc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Terminal runs the five transactions for one home warehouse. It holds its
// own random source: not safe for concurrent use; run one per goroutine.
type Terminal struct {
	db   *sql.DB
	c    Config
	g    *rng
	home int
}

// NewTerminal returns a terminal whose home warehouse is home.
func NewTerminal(db *sql.DB, c Config, home int, seed uint64) *Terminal {
	return &Terminal{db: db, c: c, g: newRNG(seed), home: home}
}

// errRollback is the New-Order transaction's intended rollback (an unused
// item number, clause 2.4.2.3).
var errRollback = errors.New("tpcc: new-order rolled back on an unused item")

// inTx runs f in a READ COMMITTED transaction, committing when it returns
// nil and rolling back otherwise.
func (t *Terminal) inTx(ctx context.Context, readOnly bool, f func(tx *sql.Tx) error) error {
	tx, err := t.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted, ReadOnly: readOnly})
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	return tx.Commit()
}

// otherWarehouse returns a warehouse other than the home one, or the home
// one when there is only one.
func (t *Terminal) otherWarehouse() int {
	if t.c.Warehouses == 1 {
		return t.home
	}
	w := t.g.between(1, t.c.Warehouses-1)
	if w >= t.home {
		w++
	}
	return w
}

// customerID is a customer number drawn as clause 2.1.6 says.
func (t *Terminal) customerID() int { return t.g.nurand(1023, 1, t.c.Customers, t.g.cID) }

// customerLast is a last name drawn as clause 2.1.6 says, among those the
// population has.
func (t *Terminal) customerLast() string {
	return lastName(lastNameNumber(t.c, t.g.nurand(255, 0, 999, t.g.cLast)))
}

// orderLine is one line of a New-Order input.
type orderLine struct {
	item, supply, quantity int
}

// NewOrder is the New-Order transaction (clause 2.4).
func (t *Terminal) NewOrder(ctx context.Context) error {
	w, d, c := t.home, t.g.between(1, Districts), t.customerID()
	lines := make([]orderLine, t.g.between(5, 15))
	allLocal := 1
	for i := range lines {
		l := orderLine{item: t.g.nurand(8191, 1, t.c.Items, t.g.olIID), supply: w, quantity: t.g.between(1, 10)}
		if t.c.Warehouses > 1 && t.g.between(1, 100) == 1 {
			l.supply, allLocal = t.otherWarehouse(), 0
		}
		lines[i] = l
	}
	if t.g.between(1, 100) == 1 {
		lines[len(lines)-1].item = t.c.Items + 1
	}
	// Stock rows are locked in one order, so that concurrent New-Orders
	// wait for each other instead of deadlocking.
	slices.SortStableFunc(lines, func(a, b orderLine) int {
		if a.supply != b.supply {
			return a.supply - b.supply
		}
		return a.item - b.item
	})
	entry := time.Now().UTC()
	return t.inTx(ctx, false, func(tx *sql.Tx) error {
		var discount, last, credit, wTax string
		if err := tx.QueryRowContext(ctx, `SELECT c_discount, c_last, c_credit, w_tax FROM customer, warehouse
			WHERE w_id = $1 AND c_w_id = w_id AND c_d_id = $2 AND c_id = $3`, w, d, c).Scan(&discount, &last, &credit, &wTax); err != nil {
			return fmt.Errorf("new-order: customer: %w", err)
		}
		var next int
		var dTax string
		if err := tx.QueryRowContext(ctx, `SELECT d_next_o_id, d_tax FROM district WHERE d_w_id = $1 AND d_id = $2 FOR UPDATE`, w, d).Scan(&next, &dTax); err != nil {
			return fmt.Errorf("new-order: district: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = $1 AND d_id = $2`, w, d); err != nil {
			return fmt.Errorf("new-order: district: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_ol_cnt, o_all_local)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, next, d, w, c, entry, len(lines), allLocal); err != nil {
			return fmt.Errorf("new-order: orders: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ($1, $2, $3)`, next, d, w); err != nil {
			return fmt.Errorf("new-order: new_order: %w", err)
		}
		distCol := fmt.Sprintf("s_dist_%02d", d)
		for n, l := range lines {
			var price, name, iData string
			err := tx.QueryRowContext(ctx, `SELECT i_price, i_name, i_data FROM item WHERE i_id = $1`, l.item).Scan(&price, &name, &iData)
			if errors.Is(err, sql.ErrNoRows) {
				return errRollback
			}
			if err != nil {
				return fmt.Errorf("new-order: item: %w", err)
			}
			var quantity int
			var sData, distInfo string
			if err := tx.QueryRowContext(ctx, `SELECT s_quantity, s_data, `+distCol+` FROM stock WHERE s_i_id = $1 AND s_w_id = $2 FOR UPDATE`,
				l.item, l.supply).Scan(&quantity, &sData, &distInfo); err != nil {
				return fmt.Errorf("new-order: stock: %w", err)
			}
			if quantity >= l.quantity+10 {
				quantity -= l.quantity
			} else {
				quantity += 91 - l.quantity
			}
			remote := 0
			if l.supply != w {
				remote = 1
			}
			if _, err := tx.ExecContext(ctx, `UPDATE stock SET s_quantity = $1, s_ytd = s_ytd + $2, s_order_cnt = s_order_cnt + 1,
				s_remote_cnt = s_remote_cnt + $3 WHERE s_i_id = $4 AND s_w_id = $5`, quantity, l.quantity, remote, l.item, l.supply); err != nil {
				return fmt.Errorf("new-order: stock: %w", err)
			}
			amount, err := times(price, l.quantity)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id,
				ol_quantity, ol_amount, ol_dist_info) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				next, d, w, n+1, l.item, l.supply, l.quantity, amount, distInfo); err != nil {
				return fmt.Errorf("new-order: order_line: %w", err)
			}
		}
		return nil
	})
}

// times returns the decimal price multiplied by n, as a decimal string.
func times(price string, n int) (string, error) {
	r, ok := new(big.Rat).SetString(price)
	if !ok {
		return "", fmt.Errorf("tpcc: price %q is not a decimal", price)
	}
	return r.Mul(r, big.NewRat(int64(n), 1)).FloatString(2), nil
}

// findCustomer returns the customer id for a by-name lookup: the one in the
// middle (rounded up) of those with the last name, ordered by first name
// (clause 2.5.2.2).
func findCustomer(ctx context.Context, tx *sql.Tx, w, d int, last string) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT c_id FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_last = $3 ORDER BY c_first`, w, d, last)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("tpcc: no customer named %s in district %d of warehouse %d", last, d, w)
	}
	return ids[(len(ids)+1)/2-1], nil
}

// Payment is the Payment transaction (clause 2.5).
func (t *Terminal) Payment(ctx context.Context) error {
	w, d := t.home, t.g.between(1, Districts)
	cw, cd := w, d
	if t.c.Warehouses > 1 && t.g.between(1, 100) > 85 {
		cw, cd = t.otherWarehouse(), t.g.between(1, Districts)
	}
	byName := t.g.between(1, 100) <= 60
	var last string
	var c int
	if byName {
		last = t.customerLast()
	} else {
		c = t.customerID()
	}
	amount := t.g.decimal(100, 500000)
	now := time.Now().UTC()
	return t.inTx(ctx, false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE warehouse SET w_ytd = w_ytd + $1 WHERE w_id = $2`, amount, w); err != nil {
			return fmt.Errorf("payment: warehouse: %w", err)
		}
		var wName, dName string
		var s1, s2, city, state, zip string
		if err := tx.QueryRowContext(ctx, `SELECT w_street_1, w_street_2, w_city, w_state, w_zip, w_name FROM warehouse WHERE w_id = $1`, w).
			Scan(&s1, &s2, &city, &state, &zip, &wName); err != nil {
			return fmt.Errorf("payment: warehouse: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE district SET d_ytd = d_ytd + $1 WHERE d_w_id = $2 AND d_id = $3`, amount, w, d); err != nil {
			return fmt.Errorf("payment: district: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT d_street_1, d_street_2, d_city, d_state, d_zip, d_name FROM district WHERE d_w_id = $1 AND d_id = $2`, w, d).
			Scan(&s1, &s2, &city, &state, &zip, &dName); err != nil {
			return fmt.Errorf("payment: district: %w", err)
		}
		if byName {
			var err error
			if c, err = findCustomer(ctx, tx, cw, cd, last); err != nil {
				return fmt.Errorf("payment: %w", err)
			}
		}
		var first, middle, cLast, phone, credit, creditLim, discount, balance string
		var since time.Time
		if err := tx.QueryRowContext(ctx, `SELECT c_first, c_middle, c_last, c_street_1, c_street_2, c_city, c_state, c_zip, c_phone,
			c_since, c_credit, c_credit_lim, c_discount, c_balance FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3 FOR UPDATE`, cw, cd, c).
			Scan(&first, &middle, &cLast, &s1, &s2, &city, &state, &zip, &phone, &since, &credit, &creditLim, &discount, &balance); err != nil {
			return fmt.Errorf("payment: customer: %w", err)
		}
		if credit == "BC" {
			var data string
			if err := tx.QueryRowContext(ctx, `SELECT c_data FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3`, cw, cd, c).Scan(&data); err != nil {
				return fmt.Errorf("payment: customer data: %w", err)
			}
			data = fmt.Sprintf("%d %d %d %d %d %s | %s", c, cd, cw, d, w, amount, data)
			if len(data) > 500 {
				data = data[:500]
			}
			if _, err := tx.ExecContext(ctx, `UPDATE customer SET c_balance = c_balance - $1, c_ytd_payment = c_ytd_payment + $1,
				c_payment_cnt = c_payment_cnt + 1, c_data = $2 WHERE c_w_id = $3 AND c_d_id = $4 AND c_id = $5`, amount, data, cw, cd, c); err != nil {
				return fmt.Errorf("payment: customer: %w", err)
			}
		} else if _, err := tx.ExecContext(ctx, `UPDATE customer SET c_balance = c_balance - $1, c_ytd_payment = c_ytd_payment + $1,
			c_payment_cnt = c_payment_cnt + 1 WHERE c_w_id = $2 AND c_d_id = $3 AND c_id = $4`, amount, cw, cd, c); err != nil {
			return fmt.Errorf("payment: customer: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO history (h_c_d_id, h_c_w_id, h_c_id, h_d_id, h_w_id, h_date, h_amount, h_data)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, cd, cw, c, d, w, now, amount, wName+"    "+dName); err != nil {
			return fmt.Errorf("payment: history: %w", err)
		}
		return nil
	})
}

// OrderStatus is the Order-Status transaction (clause 2.6).
func (t *Terminal) OrderStatus(ctx context.Context) error {
	w, d := t.home, t.g.between(1, Districts)
	byName := t.g.between(1, 100) <= 60
	var last string
	var c int
	if byName {
		last = t.customerLast()
	} else {
		c = t.customerID()
	}
	return t.inTx(ctx, true, func(tx *sql.Tx) error {
		if byName {
			var err error
			if c, err = findCustomer(ctx, tx, w, d, last); err != nil {
				return fmt.Errorf("order-status: %w", err)
			}
		}
		var balance, first, middle, cLast string
		if err := tx.QueryRowContext(ctx, `SELECT c_balance, c_first, c_middle, c_last FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3`,
			w, d, c).Scan(&balance, &first, &middle, &cLast); err != nil {
			return fmt.Errorf("order-status: customer: %w", err)
		}
		var o int
		var carrier sql.NullInt64
		var entry time.Time
		err := tx.QueryRowContext(ctx, `SELECT o_id, o_carrier_id, o_entry_d FROM orders WHERE o_w_id = $1 AND o_d_id = $2 AND o_c_id = $3
			ORDER BY o_id DESC LIMIT 1`, w, d, c).Scan(&o, &carrier, &entry)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("order-status: orders: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d FROM order_line
			WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3`, w, d, o)
		if err != nil {
			return fmt.Errorf("order-status: order_line: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var item, supply, quantity int
			var amount string
			var delivered sql.NullTime
			if err := rows.Scan(&item, &supply, &quantity, &amount, &delivered); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// Delivery is the Delivery transaction (clause 2.7), run as one database
// transaction for the ten districts. It returns how many orders it
// delivered.
func (t *Terminal) Delivery(ctx context.Context) (int, error) {
	w, carrier := t.home, t.g.between(1, 10)
	now := time.Now().UTC()
	delivered := 0
	err := t.inTx(ctx, false, func(tx *sql.Tx) error {
		delivered = 0
		for d := 1; d <= Districts; d++ {
			var o int
			err := tx.QueryRowContext(ctx, `SELECT no_o_id FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 ORDER BY no_o_id LIMIT 1 FOR UPDATE`, w, d).Scan(&o)
			if errors.Is(err, sql.ErrNoRows) {
				continue // none left, or another delivery took it meanwhile
			}
			if err != nil {
				return fmt.Errorf("delivery: new_order: %w", err)
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 AND no_o_id = $3`, w, d, o)
			if err != nil {
				return fmt.Errorf("delivery: new_order: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("delivery: deleting new order %d of district %d deleted %d rows (%v)", o, d, n, err)
			}
			var c int
			if err := tx.QueryRowContext(ctx, `SELECT o_c_id FROM orders WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3`, w, d, o).Scan(&c); err != nil {
				return fmt.Errorf("delivery: orders: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET o_carrier_id = $1 WHERE o_w_id = $2 AND o_d_id = $3 AND o_id = $4`, carrier, w, d, o); err != nil {
				return fmt.Errorf("delivery: orders: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE order_line SET ol_delivery_d = $1 WHERE ol_w_id = $2 AND ol_d_id = $3 AND ol_o_id = $4`, now, w, d, o); err != nil {
				return fmt.Errorf("delivery: order_line: %w", err)
			}
			var total string
			if err := tx.QueryRowContext(ctx, `SELECT sum(ol_amount) FROM order_line WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3`, w, d, o).Scan(&total); err != nil {
				return fmt.Errorf("delivery: order_line: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE customer SET c_balance = c_balance + $1, c_delivery_cnt = c_delivery_cnt + 1
				WHERE c_w_id = $2 AND c_d_id = $3 AND c_id = $4`, total, w, d, c); err != nil {
				return fmt.Errorf("delivery: customer: %w", err)
			}
			delivered++
		}
		return nil
	})
	return delivered, err
}

// StockLevel is the Stock-Level transaction (clause 2.8). It returns the
// number of recently sold items below the threshold.
func (t *Terminal) StockLevel(ctx context.Context) (int, error) {
	w, d, threshold := t.home, t.g.between(1, Districts), t.g.between(10, 20)
	var low int
	err := t.inTx(ctx, true, func(tx *sql.Tx) error {
		var next int
		if err := tx.QueryRowContext(ctx, `SELECT d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2`, w, d).Scan(&next); err != nil {
			return fmt.Errorf("stock-level: district: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT s_i_id) FROM order_line, stock
			WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id < $3 AND ol_o_id >= $3 - 20
			AND s_w_id = $1 AND s_i_id = ol_i_id AND s_quantity < $4`, w, d, next, threshold).Scan(&low); err != nil {
			return fmt.Errorf("stock-level: %w", err)
		}
		return nil
	})
	return low, err
}
