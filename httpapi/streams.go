package httpapi

import (
	"sync"
	"sync/atomic"
)

// streams counts the event streams a server holds open, by session,
// against its caps. A stream past a cap is refused rather than an older
// one closed: closing the oldest would let anyone holding the token push
// the user's own stream out, and clients reconnecting at once would push
// each other out in turn; a refused client retries later, and the
// streams already open keep working.
type streams struct {
	perSession, perNode int

	mu    sync.Mutex
	open  map[string]int // by session id
	total int

	refusedSession, refusedNode atomic.Uint64
}

func newStreams(perSession, perNode int) *streams {
	return &streams{perSession: perSession, perNode: perNode, open: map[string]int{}}
}

// Stream limits, as the refusals are counted.
const (
	limitPerSession = "per_session"
	limitPerNode    = "per_node"
)

// acquire takes a slot for a stream of session id, or returns the limit
// that refuses it.
func (c *streams) acquire(id string) (limit string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.open[id] >= c.perSession:
		c.refusedSession.Add(1)
		return limitPerSession, false
	case c.total >= c.perNode:
		c.refusedNode.Add(1)
		return limitPerNode, false
	}
	c.open[id]++
	c.total++
	return "", true
}

// release gives back a slot acquire took for session id.
func (c *streams) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[id]--; c.open[id] <= 0 {
		delete(c.open, id)
	}
	c.total--
}

// StreamCounts returns how many event streams are open now and how many
// were refused, past the per-session and the per-node cap, since the
// server started: for metrics.
func (s *Server) StreamCounts() (open int, refusedPerSession, refusedPerNode uint64) {
	s.streams.mu.Lock()
	open = s.streams.total
	s.streams.mu.Unlock()
	return open, s.streams.refusedSession.Load(), s.streams.refusedNode.Load()
}
