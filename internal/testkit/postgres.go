package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PostgresOptionalEnv, when set to 1, lets the PostgreSQL tests skip on a
// machine without PostgreSQL's binaries. Without it they fail: no mock
// stands in for PostgreSQL, and the project's test script installs
// Debian's postgresql package.
const PostgresOptionalEnv = "LLM_GATEWAY_POSTGRES_OPTIONAL"

// PostgresPassword is the password of the postgres superuser in every
// test cluster (host connections authenticate with SCRAM), so tests can
// check that it never reaches a log line or an error.
const PostgresPassword = "pg-test-secret-7f3a"

// PostgresServer is a PostgreSQL cluster a test started for itself with
// initdb and pg_ctl: its own directory, a free port on 127.0.0.1 only,
// fsync off. It is stopped and its directory removed when the test ends.
type PostgresServer struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// DSN is a connection URL for the postgres database as the postgres
	// superuser, password included.
	DSN string

	t       testing.TB
	bin     string // directory of initdb, pg_ctl, postgres
	dir     string // owned by the cluster's user
	data    string
	asUser  []string // runuser prefix when running as root
	running bool
}

// StartPostgres starts a private PostgreSQL cluster for t. PostgreSQL
// refuses to run as root: as root, the cluster runs as the postgres system
// user, in a directory under os.TempDir() that user owns (t.TempDir() is
// root's). The cluster Debian's package starts on port 5432 is never used.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		if os.Getenv(PostgresOptionalEnv) == "1" {
			t.Skipf("PostgreSQL is not installed (%v) and %s=1: skipping", err, PostgresOptionalEnv)
		}
		t.Fatalf("%v: install Debian's postgresql (apt-get install -y postgresql; scripts/test.sh does), "+
			"or set %s=1 to skip the PostgreSQL tests. They run a real server, never a mock.", err, PostgresOptionalEnv)
	}
	p := &PostgresServer{t: t, bin: bin}
	if err := p.initCluster(); err != nil {
		t.Fatalf("PostgreSQL test cluster: %v", err)
	}
	var lastErr error
	for range 5 {
		if p.Port, lastErr = freeLoopbackPort(); lastErr != nil {
			continue
		}
		if lastErr = p.start(); lastErr == nil {
			break
		}
		// Most likely another process took the port meanwhile.
	}
	if lastErr != nil {
		t.Fatalf("starting PostgreSQL: %v", lastErr)
	}
	p.DSN = p.DatabaseDSN("postgres")
	return p
}

// DatabaseDSN is a connection URL for database name on this cluster.
func (p *PostgresServer) DatabaseDSN(name string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", PostgresPassword, p.Port, name)
}

// CreateDatabase creates database name and returns its connection URL, so
// several stores can share one cluster without seeing each other's rows.
func (p *PostgresServer) CreateDatabase(name string) string {
	p.t.Helper()
	if out, err := p.run(filepath.Join(p.bin, "psql"), "-h", p.dir, "-p", strconv.Itoa(p.Port),
		"-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", `CREATE DATABASE "`+name+`"`); err != nil {
		p.t.Fatalf("CREATE DATABASE %s: %v\n%s", name, err, out)
	}
	return p.DatabaseDSN(name)
}

// Stop stops the server (fast shutdown: connections are cut), keeping its
// data for Restart.
func (p *PostgresServer) Stop() {
	p.t.Helper()
	if err := p.stop("fast"); err != nil {
		p.t.Fatalf("stopping PostgreSQL: %v", err)
	}
}

// Restart starts a stopped server again on the same port with the same
// data.
func (p *PostgresServer) Restart() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("restarting PostgreSQL: %v", err)
	}
}

// postgresBinDir finds PostgreSQL's programs: initdb on PATH (its real
// directory, where pg_ctl and postgres sit beside it) or the newest
// /usr/lib/postgresql/<version>/bin.
func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL's initdb is neither on PATH nor in /usr/lib/postgresql/*/bin")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// initCluster makes the cluster's directory (owned by the postgres user
// when running as root) and runs initdb in it.
func (p *PostgresServer) initCluster() error {
	dir, err := os.MkdirTemp(os.TempDir(), "llmgw-pg-")
	if err != nil {
		return err
	}
	p.dir = dir
	p.t.Cleanup(p.cleanup)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the postgres system user (Debian's postgresql package creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return fmt.Errorf("running as root needs runuser to start PostgreSQL as postgres: %v", err)
		}
		p.asUser = []string{runuser, "-u", "postgres", "--"}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(PostgresPassword+"\n"), 0o600); err != nil {
		return err
	}
	if len(p.asUser) > 0 {
		u, _ := user.Lookup("postgres")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(pwfile, uid, gid); err != nil {
			return err
		}
	}
	p.data = filepath.Join(dir, "data")
	out, err := p.run(filepath.Join(p.bin, "initdb"), "-D", p.data, "-U", "postgres",
		"--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return os.Remove(pwfile)
}

// start runs the server on p.Port, listening on 127.0.0.1 only with its
// socket in the cluster's directory, and waits until it accepts
// connections (pg_ctl -w).
func (p *PostgresServer) start() error {
	opts := strings.Join([]string{
		"-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + p.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=60",
		"-c", "shared_buffers=32MB",
	}, " ")
	out, err := p.run(filepath.Join(p.bin, "pg_ctl"), "-D", p.data, "-l", filepath.Join(p.dir, "server.log"),
		"-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		_ = p.stop("immediate")
		return fmt.Errorf("pg_ctl start on port %d: %v\n%s\n%s", p.Port, err, out, log)
	}
	p.running = true
	return nil
}

func (p *PostgresServer) stop(mode string) error {
	if !p.running {
		return nil
	}
	out, err := p.run(filepath.Join(p.bin, "pg_ctl"), "-D", p.data, "-m", mode, "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	p.running = false
	return nil
}

func (p *PostgresServer) cleanup() {
	if err := p.stop("immediate"); err != nil {
		p.t.Logf("%v", err)
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

// run runs one of PostgreSQL's programs as the cluster's user, from its
// directory (the postgres user may not read the test's working directory).
func (p *PostgresServer) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, p.asUser...), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGPASSWORD="+PostgresPassword)
	return cmd.CombinedOutput()
}

// freeLoopbackPort asks the kernel for a free port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
