package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// redisStartTimeout bounds how long redis-server may take to answer PING.
const redisStartTimeout = 15 * time.Second

// redisServer is a private redis-server child process, started as the
// Redis store's tests start theirs (redis/redistest): a free loopback
// port, a temporary working directory, no persistence.
type redisServer struct {
	bin, dir, addr string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	once sync.Once

	mu   sync.Mutex // guards conn
	conn net.Conn
	br   *bufio.Reader
}

// redisBinary returns the path of redis-server.
func redisBinary() (string, error) {
	if path, err := exec.LookPath("redis-server"); err == nil {
		return path, nil
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server", nil
	}
	return "", errors.New("the lapse-redis servers need redis-server, and there is none in PATH or at /usr/bin/redis-server: " +
		"install Redis 7 (apt-get install redis-server), or leave them out with -servers bare,lapse")
}

// startRedis starts redis-server on a free loopback port and waits until
// it answers PING.
func startRedis() (*redisServer, error) {
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "loadgen-redis-*")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 10 { // another process may take the port between probe and bind
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s := &redisServer{bin: bin, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = s.start(port); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("starting redis-server: %w", lastErr)
}

func (s *redisServer) start(port int) error {
	s.cmd = exec.Command(s.bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"),
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	s.cmd.Dir = s.dir
	// Killed with loadgen, should loadgen die without stopping it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		if _, err := s.command("PING"); err == nil {
			// Ours, not another server that took the port first?
			if pid, _ := s.info("server", "process_id"); pid == strconv.Itoa(s.cmd.Process.Pid) {
				return nil
			}
			s.cmd.Process.Kill()
			<-s.done
			return fmt.Errorf("another server answers on %s", s.addr)
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited at start: %s", s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.done
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %s", s.addr, redisStartTimeout, s.logTail())
		}
	}
}

// stop kills the server and removes its directory.
func (s *redisServer) stop() {
	s.once.Do(func() {
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Unlock()
		s.cmd.Process.Kill()
		<-s.done
		os.RemoveAll(s.dir)
	})
}

func (s *redisServer) url() string { return "redis://" + s.addr }

func (s *redisServer) serves() string { return "lapse-redis" }
func (s *redisServer) name() string   { return "redis-server" }

// version returns the server's redis_version.
func (s *redisServer) version() string {
	v, _ := s.info("server", "redis_version")
	return v
}

// cpu returns the CPU time, user and system, that redis-server has used
// so far (INFO cpu, in microseconds), or 0.
func (s *redisServer) cpu() time.Duration {
	var total time.Duration
	for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, err := s.info("cpu", f)
		if err != nil {
			return 0
		}
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0
		}
		total += time.Duration(sec * 1e9)
	}
	return total
}

// info returns one field of an INFO section.
func (s *redisServer) info(section, field string) (string, error) {
	text, err := s.command("INFO " + section)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(text, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return v, nil
		}
	}
	return "", fmt.Errorf("redis: no %s in INFO %s", field, section)
}

// command sends an inline command and returns its simple-string or bulk
// reply, on one connection kept for the purpose.
func (s *redisServer) command(cmd string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		reply, err := s.exchange(cmd)
		if err == nil || attempt > 0 {
			return reply, err
		}
	}
}

func (s *redisServer) exchange(cmd string) (string, error) {
	if s.conn == nil {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err != nil {
			return "", err
		}
		s.conn, s.br = c, bufio.NewReader(c)
	}
	fail := func(err error) (string, error) {
		s.conn.Close()
		s.conn = nil
		return "", err
	}
	s.conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(s.conn, cmd+"\r\n"); err != nil {
		return fail(err)
	}
	line, err := s.br.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return fail(fmt.Errorf("redis: bad reply %q", line))
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(s.br, b); err != nil {
			return fail(err)
		}
		return string(b[:n]), nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New("redis: " + line[1:])
	}
	return fail(fmt.Errorf("redis: unexpected reply %q", line))
}

// logTail returns the end of the server's log, for error messages.
func (s *redisServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
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
