// Package pgtest starts private PostgreSQL servers for tests, as
// redis/redistest does for Redis: never the machine's shared server on
// 5432, always a cluster of its own made with initdb in a temporary
// directory and served by a postgres child process on a free loopback
// port.
//
// A test package usually shares one server between its tests and gives
// each test a database of its own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDatabase(t) // a fresh, empty database
//		...
//	}
//
// A test that stops and restarts its server takes one for itself with
// [NewServer].
//
// If PostgreSQL is not installed the test is skipped, except when the
// environment sets CI=true: there a missing PostgreSQL fails the test, so
// a CI run cannot go green by skipping the store it was meant to check.
// Debian installs initdb and postgres in /usr/lib/postgresql/N/bin, which
// is searched when they are not on PATH. initdb refuses to run as root:
// as root, the server runs as the "postgres" user that Debian's package
// creates.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 30 * time.Second

// Binaries returns the paths of initdb and postgres, or skips t (fails it
// when CI=true) if they cannot be found.
func Binaries(t testing.TB) (initdb, postgres string) {
	t.Helper()
	initdb, postgres, err := binaries()
	if err != nil {
		msg := err.Error() + ": install PostgreSQL (e.g. apt-get install postgresql) to run the PostgreSQL store tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	return initdb, postgres
}

func binaries() (string, string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) }) // newest first
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range dirs {
			if p := filepath.Join(d, name); isFile(p) {
				return p
			}
		}
		return ""
	}
	initdb := find("initdb")
	if initdb == "" {
		return "", "", errors.New("initdb not found in PATH or /usr/lib/postgresql/*/bin")
	}
	// The server of the same installation as initdb.
	postgres := filepath.Join(filepath.Dir(initdb), "postgres")
	if real, err := filepath.EvalSymlinks(initdb); err == nil && !isFile(postgres) {
		postgres = filepath.Join(filepath.Dir(real), "postgres")
	}
	if !isFile(postgres) {
		if postgres = find("postgres"); postgres == "" {
			return "", "", errors.New("postgres not found beside initdb, in PATH or in /usr/lib/postgresql/*/bin")
		}
	}
	return initdb, postgres, nil
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// Server is a PostgreSQL server private to a test or a test binary. Its
// data survives [Server.Stop] and [Server.Start]. Its methods are safe
// for concurrent use.
type Server struct {
	// Addr is the server's host:port on the loopback interface. It stays
	// the same across Stop and Start.
	Addr string

	bin  string
	dir  string // the data directory's parent, removed by close
	cred *syscall.Credential

	dbs atomic.Int64

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts a server outside any test, for a benchmark harness: the
// caller stops it and removes its files with [Server.Close]. It fails
// where PostgreSQL is not installed.
func Start() (*Server, error) {
	initdb, bin, err := binaries()
	if err != nil {
		return nil, err
	}
	return newServer(initdb, bin)
}

// Close stops the server and removes its files.
func (s *Server) Close() { s.close() }

// Pid returns the process id of the server's postmaster, 0 while it is
// stopped: its backends are its children.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// CreateDatabase creates the database name on s and returns its URL.
func (s *Server) CreateDatabase(name string) (string, error) {
	if err := s.exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// NewServer starts a server of its own for t, in a fresh cluster, and
// stops it and removes its files when t ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	initdb, bin := Binaries(t)
	s, err := newServer(initdb, bin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the test binary's shared server, starting it at the
// first call. [Main] stops it when the tests are done.
func Shared(t testing.TB) *Server {
	t.Helper()
	initdb, bin := Binaries(t)
	shared.once.Do(func() { shared.s, shared.err = newServer(initdb, bin) })
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.s
}

// Main runs the tests of m, then [Close], then exits. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Close()
	os.Exit(code)
}

// Close stops the shared server, if one was started, and removes its
// files. A TestMain that does more than [Main] calls it after m.Run.
func Close() {
	if shared.s != nil {
		shared.s.close()
	}
}

// NewDatabase returns the URL of a fresh, empty database on the shared
// server, dropped when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDatabase(t)
}

func newServer(initdb, bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		if s.cred, err = credential("postgres"); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user to run the server as: %w", err)
		}
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	init := exec.Command(initdb, "-D", s.dataDir(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
	s.prepare(init)
	if out, err := init.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	var lastErr error
	for range 10 {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
		// Most likely another process took the port between our probe
		// and the server's bind: try another one.
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// prepare sets what every command of the server runs with: the
// unprivileged user when the test runs as root, the C locale, and death
// with the test binary, so that a crashed test leaves no server behind.
func (s *Server) prepare(cmd *exec.Cmd) {
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
}

// URL returns the URL of database db on the server.
func (s *Server) URL(db string) string {
	return "postgres://postgres@" + s.Addr + "/" + url.PathEscape(db) + "?sslmode=disable"
}

// NewDatabase creates a fresh, empty database on s and returns its URL;
// the database is dropped when t ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "t" + strconv.Itoa(os.Getpid()) + "_" + strconv.FormatInt(s.dbs.Add(1), 10)
	url, err := s.CreateDatabase(name)
	if err != nil {
		t.Fatalf("pgtest: creating a database: %v", err)
	}
	t.Cleanup(func() { s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	return url
}

// exec runs one statement in the postgres database.
func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

// Start starts the server again, on the same port and with the same
// data, after [Server.Stop]. It does nothing if the server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	var err error
	for range 50 { // the port may linger briefly after a stop
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pgtest: restarting postgres on %s: %w", s.Addr, err)
}

// Stop shuts the server down in immediate mode, as a crash would (no
// checkpoint: the next start recovers from the write-ahead log), closing
// every connection, and waits for it to exit. It does nothing if the
// server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

func (s *Server) close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "-D", s.dataDir(), "-p", port,
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		// Tests simulate crashes of processes, not of the machine.
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	s.prepare(cmd)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if s.ping() == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited at start: %s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("postgres on %s did not accept connections within %v: %s", s.Addr, startTimeout, s.logTail())
		}
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

func (s *Server) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// freePort returns a loopback TCP port that is free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
