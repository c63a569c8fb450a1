package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Settings are the postgresql.conf lines every node starts with: fast and
// unsafe on purpose (fsync off), with prepared transactions enabled for
// two-phase commit.
var Settings = map[string]string{
	"listen_addresses":          "'127.0.0.1'",
	"fsync":                     "off",
	"synchronous_commit":        "off",
	"full_page_writes":          "off",
	"max_connections":           "200",
	"max_prepared_transactions": "100",
	"shared_buffers":            "32MB",
	"log_min_messages":          "warning",
	"log_min_error_statement":   "panic",
	"logging_collector":         "off",
	"max_wal_size":              "1GB",
	"checkpoint_timeout":        "30min",
}

// Cluster is a set of PostgreSQL servers started by Start. Its methods are safe
// for concurrent use. Close stops every node and removes their data.
type Cluster struct {
	Nodes []*Node
	dir   string
}

// Node is one PostgreSQL server of a Cluster, listening on 127.0.0.1:Port with
// trust authentication for the user "postgres".
type Node struct {
	Host    string
	Port    int
	DataDir string

	mu       sync.Mutex
	running  bool
	env      *environment
	settings map[string]string // Options.Settings, written after Settings
}

// environment is what every node of the machine shares: where the binaries are
// and which OS user runs them.
type environment struct {
	binDir   string
	cred     *syscall.Credential // nil when not root
	uid, gid int
	template string
}

var (
	envOnce sync.Once
	envVal  *environment
	envErr  error
)

// DSN is the URL of database db on this node ("postgres" when empty).
func (n *Node) DSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", n.Host, n.Port, db)
}

// Addr is "host:port".
func (n *Node) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// StartTB starts a cluster of n nodes for a test or benchmark and stops it in
// tb.Cleanup. It fails tb (never skips) when a server cannot be started.
func StartTB(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, n)
	if err != nil {
		tb.Fatalf("pgtest: starting %d PostgreSQL servers: %v", n, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Start initializes and starts n PostgreSQL servers. The caller must Close the
// cluster.
func Start(ctx context.Context, n int) (*Cluster, error) {
	return start(ctx, n, Options{})
}

// start starts n servers from the template of opts.InitDB, configured with
// opts.Settings.
func start(ctx context.Context, n int, opts Options) (*Cluster, error) {
	env, err := loadEnvironment(ctx)
	if err != nil {
		return nil, err
	}
	template := env.template
	if len(opts.InitDB) > 0 {
		if template, err = env.templateFor(ctx, opts.InitDB); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "pgshard-cluster-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := env.chown(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{dir: dir}
	type result struct {
		i    int
		node *Node
		err  error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			node, err := env.newNode(ctx, filepath.Join(dir, fmt.Sprintf("node%d", i)), template, opts.Settings)
			results <- result{i, node, err}
		}(i)
	}
	c.Nodes = make([]*Node, n)
	var errs []error
	for i := 0; i < n; i++ {
		r := <-results
		c.Nodes[r.i] = r.node
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		_ = c.Close()
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Close stops every node (fast shutdown, then SIGKILL) and removes the data.
func (c *Cluster) Close() error {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if n == nil {
			continue
		}
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.Stop(ctx); err != nil {
				_ = n.Kill()
			}
		}(n)
	}
	wg.Wait()
	return os.RemoveAll(c.dir)
}

func loadEnvironment(ctx context.Context) (*environment, error) {
	envOnce.Do(func() { envVal, envErr = newEnvironment(ctx) })
	return envVal, envErr
}

func newEnvironment(ctx context.Context) (*environment, error) {
	env := &environment{uid: -1, gid: -1}
	binDir, err := findBinDir(ctx)
	if err != nil {
		return nil, err
	}
	env.binDir = binDir
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the OS user postgres to run the servers: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		env.uid, env.gid = uid, gid
		env.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	tmpl, err := env.ensureTemplate(ctx, nil)
	if err != nil {
		return nil, err
	}
	env.template = tmpl
	return env, nil
}

// findBinDir finds the PostgreSQL server binaries: $PGSHARD_PG_BINDIR, then
// pg_config --bindir, then the newest /usr/lib/postgresql/*/bin (Debian).
func findBinDir(ctx context.Context) (string, error) {
	var tried []string
	var candidates []string
	if d := os.Getenv("PGSHARD_PG_BINDIR"); d != "" {
		candidates = append(candidates, d)
	}
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
		candidates = append(candidates, dirs...)
	}
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("pgtest: no PostgreSQL server binaries (initdb) found (tried %v); install them, e.g. apt-get install postgresql, or set PGSHARD_PG_BINDIR", tried)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// ensureTemplate runs initdb once per machine, PostgreSQL version and list
// of extra initdb arguments (appended to the defaults, so they override
// them) into a cached directory, guarded by a file lock so parallel test
// binaries share it.
func (env *environment) ensureTemplate(ctx context.Context, extraArgs []string) (string, error) {
	version, err := exec.CommandContext(ctx, filepath.Join(env.binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("pgtest: postgres --version: %w", err)
	}
	key := strings.NewReplacer(" ", "_", "(", "", ")", "", "\n", "").Replace(strings.TrimSpace(string(version)))
	base := filepath.Join(os.TempDir(), "pgshard-pgtest-template-"+key+"-"+strconv.Itoa(os.Getuid())+templateSuffix(extraArgs))
	lockPath := base + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("pgtest: lock %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	dataDir := filepath.Join(base, "data")
	if _, err := os.Stat(filepath.Join(base, "ready")); err == nil {
		return dataDir, nil
	}
	os.RemoveAll(base)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if err := env.chown(base); err != nil {
		return "", err
	}
	locale := "C.UTF-8"
	if out, _ := exec.Command("locale", "-a").Output(); !strings.Contains(strings.ToLower(string(out)), "c.utf8") {
		locale = "C"
	}
	args := append([]string{"-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=" + locale, "--no-sync"}, extraArgs...)
	cmd := env.command(ctx, "initdb", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(base, "ready"), nil, 0o644); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return dataDir, nil
}

func (env *environment) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(env.binDir, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: env.cred, Setpgid: true}
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func (env *environment) chown(path string) error {
	if env.cred == nil {
		return nil
	}
	if err := os.Chown(path, env.uid, env.gid); err != nil {
		return fmt.Errorf("pgtest: chown %s: %w", path, err)
	}
	return nil
}

// newNode copies template into dataDir and starts a server on a free port,
// with settings after Settings in its configuration, trying other ports when
// the chosen one is taken meanwhile.
func (env *environment) newNode(ctx context.Context, dataDir, template string, settings map[string]string) (*Node, error) {
	cp := exec.CommandContext(ctx, "cp", "-a", template, dataDir)
	if out, err := cp.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: copying template: %w\n%s", err, out)
	}
	n := &Node{Host: "127.0.0.1", DataDir: dataDir, env: env, settings: settings}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n.Port = port
		if err := n.writeConfig(); err != nil {
			return nil, err
		}
		if lastErr = n.Start(ctx); lastErr == nil {
			return n, nil
		}
	}
	return n, lastErr
}

func (n *Node) writeConfig() error {
	var b strings.Builder
	for k, v := range Settings {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	// Later lines win: a node's own settings override the common ones.
	for k, v := range n.settings {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	fmt.Fprintf(&b, "port = %d\n", n.Port)
	fmt.Fprintf(&b, "unix_socket_directories = '%s'\n", n.DataDir)
	path := filepath.Join(n.DataDir, "pgtest.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	conf := filepath.Join(n.DataDir, "postgresql.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if !strings.Contains(string(data), "include_if_exists = 'pgtest.conf'") {
		data = append(data, []byte("\ninclude_if_exists = 'pgtest.conf'\n")...)
		if err := os.WriteFile(conf, data, 0o600); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := n.env.chown(path); err != nil {
		return err
	}
	return n.env.chown(conf)
}

// Start starts the node's server (again) and waits until it accepts connections.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		return nil
	}
	// A server killed with SIGKILL leaves its pid file; pg_ctl copes with that.
	cmd := n.env.command(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", n.DataDir, "-l", filepath.Join(n.DataDir, "server.log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(n.DataDir, "server.log"))
		return fmt.Errorf("pgtest: pg_ctl start on port %d: %w\n%s\n%s", n.Port, err, out, tail(string(log), 2000))
	}
	n.running = true
	return nil
}

// Stop shuts the node's server down (fast mode) and waits for it to exit.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	cmd := n.env.command(ctx, "pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", n.DataDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop on port %d: %w\n%s", n.Port, err, out)
	}
	n.running = false
	return nil
}

// Kill ends the node's server and all its backends with SIGKILL, as a crash
// would. Start brings it back (PostgreSQL runs crash recovery).
func (n *Node) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	pid, err := n.postmasterPID()
	if err != nil {
		n.running = false
		return err
	}
	// A pid file left by an earlier crash may name a pid the system has
	// since given to another process: kill only this node's postmaster.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmdline), n.DataDir) {
		n.running = false
		return nil
	}
	// The postmaster leads its own process group (pg_ctl calls setsid), so the
	// whole group, backends included, dies at once.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		if err2 := syscall.Kill(pid, syscall.SIGKILL); err2 != nil {
			return fmt.Errorf("pgtest: kill %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Backends may outlive a postmaster killed alone; wait for the port to close.
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", n.Addr(), 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	n.running = false
	return nil
}

// Crash ends the node as a machine crash would: it freezes the postmaster
// (SIGSTOP), so that it can neither notice its backends dying nor let them
// finish cleanly, then kills (SIGKILL) every backend and the postmaster by
// pid. Killing the postmaster alone lets backends run on and finish what
// they were doing, which hides the windows a crash opens. Start brings the
// node back (PostgreSQL runs crash recovery).
func (n *Node) Crash() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	pid, err := n.postmasterPID()
	if err != nil {
		return err
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmdline), n.DataDir) {
		return fmt.Errorf("pgtest: node on port %d: postmaster %d is not running", n.Port, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pgtest: stop postmaster %d: %w", pid, err)
	}
	children, err := childPIDs(pid)
	if err != nil {
		return err
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("pgtest: kill postmaster %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range append(children, pid) {
		for time.Now().Before(deadline) && processExists(p) {
			time.Sleep(10 * time.Millisecond)
		}
		if processExists(p) {
			return fmt.Errorf("pgtest: node on port %d: process %d still runs after SIGKILL", n.Port, p)
		}
	}
	// Every process of the node is dead, but the postmaster may stay a
	// zombie until its parent (init) reaps it, and a new postmaster takes
	// a live pid in a lock file for a running server: remove the lock
	// files (the data directory's and the socket's).
	sock := filepath.Join(n.DataDir, fmt.Sprintf(".s.PGSQL.%d", n.Port))
	for _, f := range []string{filepath.Join(n.DataDir, "postmaster.pid"), sock + ".lock", sock} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	n.running = false
	return nil
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("pgtest: listing processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			out = append(out, p)
		}
	}
	return out, nil
}

// processExists reports whether pid names a process that is not a zombie.
func processExists(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// Running reports whether the node was started and not stopped or killed.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

func (n *Node) postmasterPID() (int, error) {
	data, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: node on port %d has no postmaster.pid: %w", n.Port, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("pgtest: bad postmaster.pid: %w", err)
	}
	return pid, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
