package tpcc

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// batchRows is how many rows one INSERT of the loader carries at most.
const batchRows = 500

// inserter collects rows of one table and writes them as multi-row INSERTs
// with bind parameters. Not safe for concurrent use.
type inserter struct {
	db      *sql.DB
	table   string
	columns []string
	args    []any
	rows    int
	head    string
}

func newInserter(db *sql.DB, table string, columns ...string) *inserter {
	return &inserter{db: db, table: table, columns: columns,
		head: "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES "}
}

// add appends one row and writes the batch when it is full.
func (in *inserter) add(ctx context.Context, values ...any) error {
	if len(values) != len(in.columns) {
		return fmt.Errorf("tpcc: %s: %d values for %d columns", in.table, len(values), len(in.columns))
	}
	in.args = append(in.args, values...)
	in.rows++
	if in.rows == batchRows {
		return in.flush(ctx)
	}
	return nil
}

// flush writes the rows collected so far.
func (in *inserter) flush(ctx context.Context) error {
	if in.rows == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(in.head)
	n := 1
	for r := 0; r < in.rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range in.columns {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", n)
			n++
		}
		b.WriteByte(')')
	}
	if _, err := in.db.ExecContext(ctx, b.String(), in.args...); err != nil {
		return fmt.Errorf("tpcc: loading %s: %w", in.table, err)
	}
	in.args, in.rows = in.args[:0], 0
	return nil
}

// Load writes the initial population of clause 4.3 for c into the tables
// Create made. The same seed gives the same rows.
func Load(ctx context.Context, db *sql.DB, c Config, seed uint64) error {
	g := newRNG(seed)
	now := time.Now().UTC().Truncate(time.Second)
	if err := loadItems(ctx, db, c, g); err != nil {
		return err
	}
	for w := 1; w <= c.Warehouses; w++ {
		if err := loadWarehouse(ctx, db, c, g, w, now); err != nil {
			return err
		}
	}
	return nil
}

func loadItems(ctx context.Context, db *sql.DB, c Config, g *rng) error {
	in := newInserter(db, "item", "i_id", "i_im_id", "i_name", "i_price", "i_data")
	for i := 1; i <= c.Items; i++ {
		if err := in.add(ctx, i, g.between(1, 10000), g.astring(14, 24), g.decimal(100, 10000), g.original(g.astring(26, 50))); err != nil {
			return err
		}
	}
	return in.flush(ctx)
}

func loadWarehouse(ctx context.Context, db *sql.DB, c Config, g *rng, w int, now time.Time) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO warehouse (w_id, w_name, w_street_1, w_street_2, w_city, w_state, w_zip, w_tax, w_ytd)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		w, g.astring(6, 10), g.astring(10, 20), g.astring(10, 20), g.astring(10, 20), g.astring(2, 2), g.zip(), g.fraction(0, 2000), c.warehouseYTD()); err != nil {
		return fmt.Errorf("tpcc: loading warehouse: %w", err)
	}
	stock := newInserter(db, "stock", "s_w_id", "s_i_id", "s_quantity", "s_dist_01", "s_dist_02", "s_dist_03", "s_dist_04", "s_dist_05",
		"s_dist_06", "s_dist_07", "s_dist_08", "s_dist_09", "s_dist_10", "s_ytd", "s_order_cnt", "s_remote_cnt", "s_data")
	for i := 1; i <= c.Items; i++ {
		if err := stock.add(ctx, w, i, g.between(10, 100), g.astring(24, 24), g.astring(24, 24), g.astring(24, 24), g.astring(24, 24), g.astring(24, 24),
			g.astring(24, 24), g.astring(24, 24), g.astring(24, 24), g.astring(24, 24), g.astring(24, 24), 0, 0, 0, g.original(g.astring(26, 50))); err != nil {
			return err
		}
	}
	if err := stock.flush(ctx); err != nil {
		return err
	}
	for d := 1; d <= Districts; d++ {
		if _, err := db.ExecContext(ctx, `INSERT INTO district (d_w_id, d_id, d_name, d_street_1, d_street_2, d_city, d_state, d_zip, d_tax, d_ytd, d_next_o_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			w, d, g.astring(6, 10), g.astring(10, 20), g.astring(10, 20), g.astring(10, 20), g.astring(2, 2), g.zip(), g.fraction(0, 2000), c.districtYTD(), c.Customers+1); err != nil {
			return fmt.Errorf("tpcc: loading district: %w", err)
		}
		if err := loadDistrict(ctx, db, c, g, w, d, now); err != nil {
			return err
		}
	}
	return nil
}

func loadDistrict(ctx context.Context, db *sql.DB, c Config, g *rng, w, d int, now time.Time) error {
	cust := newInserter(db, "customer", "c_w_id", "c_d_id", "c_id", "c_first", "c_middle", "c_last", "c_street_1", "c_street_2", "c_city",
		"c_state", "c_zip", "c_phone", "c_since", "c_credit", "c_credit_lim", "c_discount", "c_balance", "c_ytd_payment",
		"c_payment_cnt", "c_delivery_cnt", "c_data")
	hist := newInserter(db, "history", "h_c_id", "h_c_d_id", "h_c_w_id", "h_d_id", "h_w_id", "h_date", "h_amount", "h_data")
	for id := 1; id <= c.Customers; id++ {
		last := id - 1
		if last >= 1000 {
			last = g.nurand(255, 0, 999, g.cLast)
		}
		credit := "GC"
		if g.r.IntN(10) == 0 {
			credit = "BC"
		}
		if err := cust.add(ctx, w, d, id, g.astring(8, 16), "OE", lastName(last), g.astring(10, 20), g.astring(10, 20), g.astring(10, 20),
			g.astring(2, 2), g.zip(), g.nstring(16, 16), now, credit, "50000.00", g.fraction(0, 5000), "-"+historyAmount, historyAmount,
			1, 0, g.astring(300, 500)); err != nil {
			return err
		}
		if err := hist.add(ctx, id, d, w, d, w, now, historyAmount, g.astring(12, 24)); err != nil {
			return err
		}
	}
	if err := cust.flush(ctx); err != nil {
		return err
	}
	if err := hist.flush(ctx); err != nil {
		return err
	}
	orders := newInserter(db, "orders", "o_w_id", "o_d_id", "o_id", "o_c_id", "o_entry_d", "o_carrier_id", "o_ol_cnt", "o_all_local")
	lines := newInserter(db, "order_line", "ol_w_id", "ol_d_id", "ol_o_id", "ol_number", "ol_i_id", "ol_supply_w_id", "ol_delivery_d",
		"ol_quantity", "ol_amount", "ol_dist_info")
	newOrders := newInserter(db, "new_order", "no_w_id", "no_d_id", "no_o_id")
	customers := g.r.Perm(c.Customers)
	for o := 1; o <= c.Customers; o++ {
		delivered := o < c.undeliveredFrom()
		var carrier any
		if delivered {
			carrier = g.between(1, 10)
		}
		olCnt := g.between(5, 15)
		if err := orders.add(ctx, w, d, o, customers[o-1]+1, now, carrier, olCnt, 1); err != nil {
			return err
		}
		for n := 1; n <= olCnt; n++ {
			var deliveryD any
			amount := "0.00"
			if delivered {
				deliveryD = now
			} else {
				amount = g.decimal(1, 999999)
			}
			if err := lines.add(ctx, w, d, o, n, g.between(1, c.Items), w, deliveryD, 5, amount, g.astring(24, 24)); err != nil {
				return err
			}
		}
		if !delivered {
			if err := newOrders.add(ctx, w, d, o); err != nil {
				return err
			}
		}
	}
	for _, in := range []*inserter{orders, lines, newOrders} {
		if err := in.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}
