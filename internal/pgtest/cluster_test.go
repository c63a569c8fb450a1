package pgtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClusterStartStopKill(t *testing.T) {
	c := StartTB(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range c.Nodes {
		conn, err := pgx.Connect(ctx, n.DSN(""))
		if err != nil {
			t.Fatalf("connect %s: %v", n.Addr(), err)
		}
		var mpt int
		if err := conn.QueryRow(ctx, "SELECT current_setting('max_prepared_transactions')::int").Scan(&mpt); err != nil {
			t.Fatal(err)
		}
		if mpt == 0 {
			t.Fatalf("max_prepared_transactions is 0 on %s", n.Addr())
		}
		conn.Close(ctx)
	}
	n := c.Nodes[0]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, n.DSN("")); err == nil {
		t.Fatal("connected to a killed node")
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, n.DSN(""))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	conn.Close(ctx)
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, n.DSN("")); err == nil {
		t.Fatal("connected to a stopped node")
	}
}

// TestStartWithOptions starts one node per initdb configuration and checks
// that the database default collation has the provider and locale asked
// for, and that Options.Settings override the common settings.
func TestStartWithOptions(t *testing.T) {
	cases := []struct {
		name                string
		initdb              []string
		provider, collate   string
		iculocale           string
		timezone, datestyle string
		settings            map[string]string
	}{
		{name: "C", initdb: []string{"--locale=C"}, provider: "c", collate: "C",
			timezone: "Asia/Kolkata", datestyle: "SQL, DMY",
			settings: map[string]string{"timezone": "'Asia/Kolkata'", "datestyle": "'SQL, DMY'"}},
		{name: "libc en_US", initdb: []string{"--locale=en_US.UTF-8"}, provider: "c", collate: "en_US.UTF-8",
			timezone: "America/New_York", datestyle: "ISO, MDY",
			settings: map[string]string{"timezone": "'America/New_York'"}},
		{name: "ICU en-US", initdb: []string{"--locale-provider=icu", "--icu-locale=en-US"}, provider: "i", iculocale: "en-US",
			datestyle: "ISO, MDY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := StartTBWith(t, 1, Options{InitDB: tc.initdb, Settings: tc.settings})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn, err := pgx.Connect(ctx, c.Nodes[0].DSN(""))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var provider, collate, iculocale, timezone, datestyle string
			if err := conn.QueryRow(ctx, `SELECT datlocprovider::text, datcollate, coalesce(daticulocale, ''),
				current_setting('TimeZone'), current_setting('DateStyle')
				FROM pg_database WHERE datname = current_database()`).Scan(&provider, &collate, &iculocale, &timezone, &datestyle); err != nil {
				t.Fatal(err)
			}
			if provider != tc.provider || iculocale != tc.iculocale || (tc.collate != "" && collate != tc.collate) {
				t.Errorf("provider %q, collate %q, ICU locale %q; want %q, %q, %q", provider, collate, iculocale, tc.provider, tc.collate, tc.iculocale)
			}
			if tc.timezone != "" && timezone != tc.timezone {
				t.Errorf("TimeZone %q, want %q", timezone, tc.timezone)
			}
			if datestyle != tc.datestyle {
				t.Errorf("DateStyle %q, want %q", datestyle, tc.datestyle)
			}
		})
	}
}

// TestMissingLocaleFailsSayingHowToInstallIt: initdb arguments naming a
// locale the machine lacks fail before initdb runs, naming the locale and
// the commands that generate it.
func TestMissingLocaleFailsSayingHowToInstallIt(t *testing.T) {
	cases := []struct {
		args    []string
		missing string
	}{
		{[]string{"--locale=xx_YY.UTF-8"}, "xx_YY.UTF-8"},
		{[]string{"--lc-collate", "xx_YY.UTF-8"}, "xx_YY.UTF-8"},
		{[]string{"--locale=C", "--lc-ctype=zz_ZZ.ISO-8859-1"}, "zz_ZZ.ISO-8859-1"},
		{[]string{"--locale=C"}, ""},
		{[]string{"--locale-provider=icu", "--icu-locale=en-US"}, ""},
	}
	for _, tc := range cases {
		err := checkLocales(tc.args)
		if tc.missing == "" {
			if err != nil {
				t.Errorf("checkLocales(%q) = %v, want nil", tc.args, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("checkLocales(%q) = nil, want an error naming %s", tc.args, tc.missing)
			continue
		}
		for _, want := range []string{tc.missing, "apt-get install -y locales", "locale-gen", "localedef"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("checkLocales(%q) = %q, does not say %q", tc.args, err, want)
			}
		}
	}
}
