// Package redistest starts private Redis servers for tests, like
// net/http/httptest starts HTTP servers: a standalone [Server] that a test
// can stop and restart on the same port, and a three-master [Cluster].
//
// Every server is a redis-server child process bound to a free loopback
// port, with its working directory in t.TempDir(), no persistence
// (--save "" --appendonly no), and is stopped when the test ends. If no
// redis-server binary is installed the test is skipped, except when the
// environment sets CI=true: there a missing Redis fails the test, so a CI
// run cannot go green by skipping the store it was meant to check.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server may take to answer PING, and a
// cluster to reach cluster_state:ok.
const startTimeout = 15 * time.Second

// Binary returns the path of redis-server, or skips t (fails it when
// CI=true) if there is none.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/redis-server"); statErr == nil {
			return "/usr/bin/redis-server"
		}
		msg := "redis-server not found in PATH or /usr/bin: install Redis 7 (e.g. apt-get install redis-server) to run the Redis store tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	return path
}

// Server is a redis-server process private to one test. Its methods are
// safe for concurrent use.
type Server struct {
	// Addr is the server's host:port on the loopback interface. It stays
	// the same across [Server.Stop] and [Server.Start].
	Addr string

	t    testing.TB
	bin  string
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// NewServer starts a standalone Redis server on a free loopback port and
// arranges for it to be stopped when t ends. extra arguments are passed
// to redis-server after the defaults.
func NewServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	return newServer(t, false, extra...)
}

func newServer(t testing.TB, cluster bool, extra ...string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	var lastErr error
	for range 10 {
		port, err := freePort(cluster)
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s := &Server{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			t:    t, bin: bin, dir: dir,
		}
		s.args = []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
			"--save", "", "--appendonly", "no", "--daemonize", "no",
		}
		if cluster {
			s.args = append(s.args, "--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "2000")
		}
		s.args = append(s.args, extra...)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
		// Most likely another process took the port between our probe
		// and the server's bind: try another one.
	}
	t.Fatalf("redistest: starting redis-server: %v", lastErr)
	return nil
}

// URL returns the server's address as a redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Start starts the server again, on the same port, after [Server.Stop].
// It does nothing if the server is running. Data from before the stop is
// gone: the server keeps nothing on disk.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		return
	}
	var err error
	for range 50 { // the port may linger briefly after a kill
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
}

// Stop kills the server with SIGKILL, as a crash would, and waits for it
// to exit. It does nothing if the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Restart stops the server and starts it again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr) == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start: %s", s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %s", s.Addr, startTimeout, s.logTail())
		}
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort returns a loopback TCP port that is free now. For a cluster
// node its bus port (port+10000) must be free too.
func freePort(cluster bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !cluster {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// Cluster is a Redis Cluster of masters without replicas, private to one
// test, with the 16384 slots split evenly between them.
type Cluster struct {
	// Nodes are the cluster's masters.
	Nodes []*Server
}

// NewCluster starts a Redis Cluster of the given number of masters
// (three if masters < 3, the smallest Redis accepts as a proper cluster),
// assigns the slots, introduces the nodes to each other and waits until
// every node reports cluster_state:ok. The servers stop when t ends.
func NewCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	masters = max(masters, 3)
	c := &Cluster{}
	for range masters {
		c.Nodes = append(c.Nodes, newServer(t, true))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	clients := make([]*goredis.Client, masters)
	for i, n := range c.Nodes {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: n.Addr, Protocol: 2})
		defer clients[i].Close()
	}
	const slots = 16384
	for i, cl := range clients {
		lo, hi := i*slots/masters, (i+1)*slots/masters-1
		if err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE %d %d on %s: %v", lo, hi, c.Nodes[i].Addr, err)
		}
	}
	for _, n := range c.Nodes[1:] {
		host, port, _ := net.SplitHostPort(n.Addr)
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER MEET %s: %v", n.Addr, err)
		}
	}
	for i, cl := range clients {
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(masters)+"\r") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redistest: node %s did not reach cluster_state:ok within %v: %v\n%s", c.Nodes[i].Addr, startTimeout, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// Addrs returns the host:port of every node.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL returns the cluster as a redis+cluster:// URL naming every node,
// the form redis.Open accepts.
func (c *Cluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}
