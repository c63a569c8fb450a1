package pgtest

import (
	"context"
	"fmt"
	"hash/fnv"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure the servers of a Cluster started by StartWith.
type Options struct {
	// InitDB are extra initdb arguments, appended after pgtest's own
	// ("-E UTF8 --locale=C.UTF-8", or C where C.UTF-8 is missing), so they
	// override them: for example "--locale=en_US.UTF-8", or
	// "--locale-provider=icu", "--icu-locale=en-US". initdb runs once per
	// distinct list (per machine and PostgreSQL version) into a cached
	// template, as for the default cluster. A libc locale named by
	// --locale, --lc-collate or --lc-ctype must exist on the machine
	// (locale -a); StartWith fails saying how to generate it otherwise.
	InitDB []string
	// Settings are postgresql.conf settings written after Settings (so
	// they override them), values in configuration-file syntax: for
	// example "timezone": "'America/New_York'", "datestyle": "'SQL, DMY'".
	Settings map[string]string
}

// StartWith initializes and starts n PostgreSQL servers configured by opts.
// The caller must Close the cluster.
func StartWith(ctx context.Context, n int, opts Options) (*Cluster, error) {
	if err := checkLocales(opts.InitDB); err != nil {
		return nil, err
	}
	return start(ctx, n, opts)
}

// StartTBWith is StartTB with Options: it starts a cluster of n nodes
// configured by opts for a test or benchmark and stops it in tb.Cleanup. It
// fails tb (never skips) when a server cannot be started, a locale is
// missing included.
func StartTBWith(tb testing.TB, n int, opts Options) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartWith(ctx, n, opts)
	if err != nil {
		tb.Fatalf("pgtest: starting %d PostgreSQL servers (initdb %v, settings %v): %v", n, opts.InitDB, opts.Settings, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// templates are the template data directories of the extra initdb argument
// lists used so far in this process, by templateSuffix.
var templates struct {
	sync.Mutex
	dirs map[string]string
}

// templateFor returns the template data directory initialized with the
// extra initdb arguments args, running initdb on the first use on this
// machine.
func (env *environment) templateFor(ctx context.Context, args []string) (string, error) {
	key := templateSuffix(args)
	templates.Lock()
	defer templates.Unlock()
	if dir, ok := templates.dirs[key]; ok {
		return dir, nil
	}
	dir, err := env.ensureTemplate(ctx, args)
	if err != nil {
		return "", err
	}
	if templates.dirs == nil {
		templates.dirs = map[string]string{}
	}
	templates.dirs[key] = dir
	return dir, nil
}

// templateSuffix names the template of extra initdb arguments args: "" for
// none, else "-i" and a hash of the list.
func templateSuffix(args []string) string {
	if len(args) == 0 {
		return ""
	}
	h := fnv.New64a()
	for _, a := range args {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("-i%016x", h.Sum64())
}

// localeInstallHint says how to generate the missing libc locale l (such
// as en_US.UTF-8) on Debian, as .ci/run does.
func localeInstallHint(l string) string {
	lang, codeset, _ := strings.Cut(l, ".")
	if codeset == "" {
		codeset = "UTF-8"
	}
	return fmt.Sprintf(`apt-get update && apt-get install -y locales && sed -i 's/^# *\(%s %s\)/\1/' /etc/locale.gen && locale-gen`+
		" (or: localedef -i %s -f %s %s); .ci/run does this for en_US.UTF-8", l, codeset, lang, codeset, l)
}

// checkLocales fails when initdb arguments name a libc locale (--locale,
// --lc-collate, --lc-ctype, in the --opt=value or --opt value form) that
// `locale -a` does not list, saying how to generate it.
func checkLocales(args []string) error {
	var want []string
	for i, a := range args {
		for _, opt := range []string{"--locale", "--lc-collate", "--lc-ctype"} {
			switch {
			case strings.HasPrefix(a, opt+"="):
				want = append(want, strings.TrimPrefix(a, opt+"="))
			case a == opt && i+1 < len(args):
				want = append(want, args[i+1])
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	out, err := exec.Command("locale", "-a").Output()
	if err != nil {
		return fmt.Errorf("pgtest: listing the machine's locales (locale -a) for initdb %v: %w", args, err)
	}
	have := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		have[normalizeLocale(l)] = true
	}
	for _, l := range want {
		if l == "C" || l == "POSIX" || have[normalizeLocale(l)] {
			continue
		}
		return fmt.Errorf("pgtest: initdb %v needs the locale %s, which this machine does not have (locale -a lists %s); generate it: %s",
			args, l, strings.Join(strings.Fields(string(out)), " "), localeInstallHint(l))
	}
	return nil
}

// normalizeLocale is glibc's normalization of a locale name's codeset
// ("en_US.UTF-8" and "en_US.utf8" are the same locale), lowercased.
func normalizeLocale(l string) string {
	lang, codeset, ok := strings.Cut(l, ".")
	if !ok {
		return strings.ToLower(l)
	}
	codeset = strings.ToLower(strings.ReplaceAll(codeset, "-", ""))
	return strings.ToLower(lang) + "." + codeset
}
