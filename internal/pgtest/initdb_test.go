package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStartInitdbPassesArguments(t *testing.T) {
	c := StartInitdbTB(t, 1, "--locale-provider=icu", "--icu-locale=en-US")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.Nodes[0].DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var provider, locale string
	if err := conn.QueryRow(ctx, `SELECT datlocprovider::text, daticulocale FROM pg_database WHERE datname = current_database()`).Scan(&provider, &locale); err != nil {
		t.Fatal(err)
	}
	if provider != "i" || locale != "en-US" {
		t.Fatalf("datlocprovider %q, daticulocale %q; want i, en-US", provider, locale)
	}
}
