package session

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestWithHostPortKeepsParameters: a worker's DSN keeps every setting of the
// metadata DSN, spaces included (options=-c datestyle=...), for URL and
// key=value DSNs alike.
func TestWithHostPortKeepsParameters(t *testing.T) {
	cases := []struct {
		dsn, param, want string
	}{
		{"postgres://u@meta:5432/db?sslmode=disable&options=-c%20datestyle%3DSQL%2CDMY", "options", "-c datestyle=SQL,DMY"},
		{"postgres://u@meta:5432/db?sslmode=disable&datestyle=SQL%2C%20DMY", "datestyle", "SQL, DMY"},
		{"postgres://u@meta:5432/db?sslmode=disable&application_name=a%2Bb", "application_name", "a+b"},
		{"host=meta port=5432 dbname=db sslmode=disable options='-c timezone=Asia/Kolkata'", "options", "-c timezone=Asia/Kolkata"},
	}
	for _, c := range cases {
		out, err := withHostPort(c.dsn, "worker", 6000)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pgconn.ParseConfig(out)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if cfg.Host != "worker" || cfg.Port != 6000 {
			t.Errorf("%s: host %s port %d", out, cfg.Host, cfg.Port)
		}
		if got := cfg.RuntimeParams[c.param]; got != c.want {
			t.Errorf("%s: %s = %q, want %q", out, c.param, got, c.want)
		}
	}
}
