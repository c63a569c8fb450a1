package tpcc

import (
	"context"
	"database/sql"
	"fmt"
)

// Table is one TPC-C table: its DDL and the column pgshard distributes it
// by; Key is "" for a reference table (item: one shard, a copy on every
// node).
type Table struct {
	Name string
	Key  string
	DDL  string
}

// Tables lists the TPC-C tables in creation order.
var Tables = []Table{
	{"warehouse", "w_id", `CREATE TABLE warehouse (
		w_id int NOT NULL, w_name varchar(10), w_street_1 varchar(20), w_street_2 varchar(20),
		w_city varchar(20), w_state char(2), w_zip char(9), w_tax numeric(4,4), w_ytd numeric(12,2),
		PRIMARY KEY (w_id))`},
	{"district", "d_w_id", `CREATE TABLE district (
		d_w_id int NOT NULL, d_id int NOT NULL, d_name varchar(10), d_street_1 varchar(20), d_street_2 varchar(20),
		d_city varchar(20), d_state char(2), d_zip char(9), d_tax numeric(4,4), d_ytd numeric(12,2), d_next_o_id int,
		PRIMARY KEY (d_w_id, d_id))`},
	{"customer", "c_w_id", `CREATE TABLE customer (
		c_w_id int NOT NULL, c_d_id int NOT NULL, c_id int NOT NULL, c_first varchar(16), c_middle char(2), c_last varchar(16),
		c_street_1 varchar(20), c_street_2 varchar(20), c_city varchar(20), c_state char(2), c_zip char(9), c_phone char(16),
		c_since timestamp, c_credit char(2), c_credit_lim numeric(12,2), c_discount numeric(4,4), c_balance numeric(12,2),
		c_ytd_payment numeric(12,2), c_payment_cnt int, c_delivery_cnt int, c_data varchar(500),
		PRIMARY KEY (c_w_id, c_d_id, c_id))`},
	{"history", "h_w_id", `CREATE TABLE history (
		h_c_id int, h_c_d_id int, h_c_w_id int, h_d_id int, h_w_id int NOT NULL, h_date timestamp,
		h_amount numeric(6,2), h_data varchar(24))`},
	{"new_order", "no_w_id", `CREATE TABLE new_order (
		no_w_id int NOT NULL, no_d_id int NOT NULL, no_o_id int NOT NULL,
		PRIMARY KEY (no_w_id, no_d_id, no_o_id))`},
	{"orders", "o_w_id", `CREATE TABLE orders (
		o_w_id int NOT NULL, o_d_id int NOT NULL, o_id int NOT NULL, o_c_id int, o_entry_d timestamp,
		o_carrier_id int, o_ol_cnt int, o_all_local int,
		PRIMARY KEY (o_w_id, o_d_id, o_id))`},
	{"order_line", "ol_w_id", `CREATE TABLE order_line (
		ol_w_id int NOT NULL, ol_d_id int NOT NULL, ol_o_id int NOT NULL, ol_number int NOT NULL, ol_i_id int,
		ol_supply_w_id int, ol_delivery_d timestamp, ol_quantity int, ol_amount numeric(6,2), ol_dist_info char(24),
		PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number))`},
	{"item", "", `CREATE TABLE item (
		i_id int NOT NULL, i_im_id int, i_name varchar(24), i_price numeric(5,2), i_data varchar(50),
		PRIMARY KEY (i_id))`},
	{"stock", "s_w_id", `CREATE TABLE stock (
		s_w_id int NOT NULL, s_i_id int NOT NULL, s_quantity int,
		s_dist_01 char(24), s_dist_02 char(24), s_dist_03 char(24), s_dist_04 char(24), s_dist_05 char(24),
		s_dist_06 char(24), s_dist_07 char(24), s_dist_08 char(24), s_dist_09 char(24), s_dist_10 char(24),
		s_ytd int, s_order_cnt int, s_remote_cnt int, s_data varchar(50),
		PRIMARY KEY (s_w_id, s_i_id))`},
}

// indexes are the secondary indexes the transactions' lookups need.
var indexes = []string{
	`CREATE INDEX customer_last ON customer (c_w_id, c_d_id, c_last, c_first)`,
	`CREATE INDEX orders_customer ON orders (o_w_id, o_d_id, o_c_id, o_id)`,
}

// Sharding says how Create distributes the tables; the zero value creates
// plain tables (one server).
type Sharding struct {
	Shards, Replicas int
}

// Create creates the tables and indexes in db and, with a non-zero
// sharding, distributes them through pgshard's admin functions: item, which
// has no warehouse id, as a reference table (a copy on every node, read
// beside each warehouse's rows).
func Create(ctx context.Context, db *sql.DB, s Sharding) error {
	for _, t := range Tables {
		if _, err := db.ExecContext(ctx, t.DDL); err != nil {
			return fmt.Errorf("tpcc: creating %s: %w", t.Name, err)
		}
	}
	for _, ix := range indexes {
		if _, err := db.ExecContext(ctx, ix); err != nil {
			return fmt.Errorf("tpcc: %s: %w", ix, err)
		}
	}
	if s.Shards == 0 {
		return nil
	}
	for _, t := range Tables {
		if t.Key == "" {
			if _, err := db.ExecContext(ctx, `SELECT master_create_reference_table($1)`, t.Name); err != nil {
				return fmt.Errorf("tpcc: making %s a reference table: %w", t.Name, err)
			}
			continue
		}
		if _, err := db.ExecContext(ctx, `SELECT master_create_distributed_table($1, $2)`, t.Name, t.Key); err != nil {
			return fmt.Errorf("tpcc: distributing %s: %w", t.Name, err)
		}
		if _, err := db.ExecContext(ctx, `SELECT master_create_worker_shards($1, $2, $3)`, t.Name, s.Shards, s.Replicas); err != nil {
			return fmt.Errorf("tpcc: creating the shards of %s: %w", t.Name, err)
		}
	}
	return nil
}
