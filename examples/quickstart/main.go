// Command quickstart runs pg_shard's walkthrough with pgshard on a local
// cluster it starts itself: one metadata node and four workers. It creates
// the seed's customer_reviews table, 16 shards with 2 replicas each, inserts
// rows from 8 goroutines through one prepared statement, stops a worker,
// keeps writing, starts it again, repairs the placements that missed writes,
// and checks that the count and every replica agree.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	_ "github.com/pgshard/pgshard"
	"github.com/pgshard/pgshard/internal/pgtest"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func say(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }

func run(ctx context.Context) error {
	say("starting a local cluster: 1 metadata node and 4 workers")
	cluster, err := pgtest.Start(ctx, 5)
	if err != nil {
		return err
	}
	defer cluster.Close()
	meta, workers := cluster.Nodes[0], cluster.Nodes[1:]
	fmt.Printf("metadata database %s, workers", meta.Addr())
	for _, w := range workers {
		fmt.Printf(" %s", w.Addr())
	}
	fmt.Println()

	dsn := meta.DSN("postgres")
	db, err := sql.Open("pgshard", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	exec := func(query string, args ...any) error {
		fmt.Printf("pgshard=# %s\n", oneLine(query))
		_, err := db.ExecContext(ctx, query, args...)
		return err
	}

	say("registering the workers (pg_shard read them from pg_worker_list.conf)")
	for _, w := range workers {
		if err := exec(fmt.Sprintf("SELECT master_add_node('%s', %d)", w.Host, w.Port)); err != nil {
			return err
		}
	}

	say("creating the distributed table, 16 shards x 2 replicas")
	for _, q := range []string{
		`CREATE TABLE customer_reviews (
			customer_id TEXT NOT NULL,
			review_date DATE,
			review_rating INTEGER,
			review_votes INTEGER,
			review_helpful_votes INTEGER,
			product_id CHAR(10),
			product_title TEXT,
			product_sales_rank BIGINT,
			product_group TEXT,
			product_category TEXT,
			product_subcategory TEXT,
			similar_product_ids CHAR(10)[]
		)`,
		`SELECT master_create_distributed_table('customer_reviews', 'customer_id')`,
		`SELECT master_create_worker_shards('customer_reviews', 16, 2)`,
	} {
		if err := exec(q); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`SELECT * FROM pgs_distribution_metadata.partition`,
		`SELECT * FROM pgs_distribution_metadata.shard ORDER BY id`,
		`SELECT * FROM pgs_distribution_metadata.shard_placement ORDER BY id`,
	} {
		if err := printQuery(ctx, db, q); err != nil {
			return err
		}
	}

	ins, err := db.PrepareContext(ctx, `INSERT INTO customer_reviews (customer_id, review_date, review_rating, product_title) VALUES ($1, now(), $2, $3)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	var next atomic.Int64
	write := func(rows int) (int64, error) {
		var wg sync.WaitGroup
		var written atomic.Int64
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rows/8; i++ {
					id := next.Add(1)
					if _, err := ins.ExecContext(ctx, "customer-"+strconv.FormatInt(id, 10), id%5+1, "product "+strconv.FormatInt(id%97, 10)); err != nil {
						errs <- err
						return
					}
					written.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		return written.Load(), <-errs
	}

	say("inserting 4000 rows from 8 goroutines through one prepared statement (routed by $1 at execute time)")
	n, err := write(4000)
	if err != nil {
		return err
	}
	fmt.Printf("inserted %d rows\n", n)
	before, err := count(ctx, db)
	if err != nil {
		return err
	}

	down := workers[0]
	say("stopping worker %s (pg_ctl stop -m fast)", down.Addr())
	if err := down.Stop(ctx); err != nil {
		return err
	}
	if _, err := count(ctx, db); err != nil {
		return err
	}

	say("writing 2000 more rows while %s is down: its placements miss them and are marked inactive (3)", down.Addr())
	n, err = write(2000)
	if err != nil {
		return err
	}
	fmt.Printf("inserted %d rows\n", n)
	after, err := count(ctx, db)
	if err != nil {
		return err
	}
	if err := printQuery(ctx, db, `SELECT * FROM pgs_distribution_metadata.shard_placement WHERE shard_state = 3 ORDER BY id`); err != nil {
		return err
	}

	say("starting %s again; inactive placements get no reads until repaired", down.Addr())
	if err := down.Start(ctx); err != nil {
		return err
	}
	if _, err := count(ctx, db); err != nil {
		return err
	}

	say("repairing, as in the seed: first with the arguments the wrong way round")
	pairs := `FROM pgs_distribution_metadata.shard_placement t1, pgs_distribution_metadata.shard_placement t2
		WHERE t1.shard_id = t2.shard_id AND (t1.node_name, t1.node_port) <> (t2.node_name, t2.node_port) AND t1.shard_state = 3`
	err = exec(`SELECT master_copy_shard_placement(t1.shard_id, t1.node_name, t1.node_port, t2.node_name, t2.node_port) ` + pairs)
	fmt.Printf("%v\n", err)
	if err == nil || !strings.Contains(err.Error(), "source placement must be in finalized state") {
		return errors.New("the reversed repair should have been refused")
	}
	if err := exec(`SELECT master_copy_shard_placement(t1.shard_id, t2.node_name, t2.node_port, t1.node_name, t1.node_port) ` + pairs); err != nil {
		return err
	}
	if err := printQuery(ctx, db, `SELECT * FROM pgs_distribution_metadata.shard_placement ORDER BY id`); err != nil {
		return err
	}
	repaired, err := count(ctx, db)
	if err != nil {
		return err
	}
	if repaired != after || after != before+2000 {
		return fmt.Errorf("counts disagree: %d before the stop, %d after writing, %d after repair", before, after, repaired)
	}

	say("checking every shard: all its placements hold identical rows")
	if err := verifyReplicas(ctx, db, dsn); err != nil {
		return err
	}
	say("done: %d rows, every placement finalized and identical", repaired)
	return nil
}

func count(ctx context.Context, db *sql.DB) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM customer_reviews`).Scan(&n); err != nil {
		return 0, err
	}
	fmt.Printf("pgshard=# SELECT count(*) FROM customer_reviews;\n count\n-------\n %d\n", n)
	return n, nil
}

// verifyReplicas compares, shard by shard, an md5 of every placement's rows,
// reading each worker directly with pgx.
func verifyReplicas(ctx context.Context, db *sql.DB, metaDSN string) error {
	rows, err := db.QueryContext(ctx, `SELECT shard_id, node_name, node_port, shard_state FROM pgs_distribution_metadata.shard_placement ORDER BY shard_id, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	digests := map[int64]string{}
	checked := 0
	for rows.Next() {
		var shard int64
		var host string
		var port, state int
		if err := rows.Scan(&shard, &host, &port, &state); err != nil {
			return err
		}
		if state != 1 {
			return fmt.Errorf("placement of shard %d on %s:%d is in state %d", shard, host, port, state)
		}
		cfg, err := pgx.ParseConfig(metaDSN)
		if err != nil {
			return err
		}
		cfg.Host, cfg.Port = host, uint16(port)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		var digest string
		err = conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM customer_reviews_%d t`, shard)).Scan(&digest)
		conn.Close(ctx)
		if err != nil {
			return err
		}
		if prev, ok := digests[shard]; ok && prev != digest {
			return fmt.Errorf("shard %d: placements differ (%s vs %s)", shard, prev, digest)
		}
		digests[shard] = digest
		checked++
	}
	fmt.Printf("%d placements of %d shards checked: identical\n", checked, len(digests))
	return rows.Err()
}

func printQuery(ctx context.Context, db *sql.DB, query string) error {
	fmt.Printf("pgshard=# %s\n", oneLine(query))
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := make([]string, len(cols))
		for i, v := range vals {
			cells[i] = v.String
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		n++
	}
	tw.Flush()
	fmt.Printf("(%d rows)\n", n)
	return rows.Err()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
