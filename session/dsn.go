package session

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// withHostPort rewrites a URL or key=value DSN to point at host:port.
func withHostPort(dsn, host string, port int) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgshard: parsing DSN: %w", err)
		}
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
		q := u.Query()
		q.Del("host")
		q.Del("port")
		// Encode writes a space as '+', which libpq and pgx read as '+'
		// (a literal '+' it writes as %2B).
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		return u.String(), nil
	}
	// key=value: later settings override earlier ones.
	return dsn + " host=" + quoteKV(host) + " port=" + strconv.Itoa(port), nil
}

func quoteKV(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
