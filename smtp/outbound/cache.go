package outbound

import (
	"sync"
	"time"
)

// connCache keeps idle sessions per nexthop key for a short time so that
// the next delivery to the same nexthop skips connect, greeting and EHLO
// (Postfix's connection cache, smtp_connection_cache_time_limit). It is
// safe for concurrent use.
type connCache struct {
	mu     sync.Mutex
	idle   map[string][]*parkedSession
	closed bool
}

type parkedSession struct {
	s     *session
	timer *time.Timer
}

func newConnCache() *connCache {
	return &connCache{idle: map[string][]*parkedSession{}}
}

// put parks s under key; it closes s itself after idleLimit unless taken.
// It reports false (and does not take s) when the cache is closed.
func (cc *connCache) put(key string, s *session, idleLimit time.Duration) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed {
		return false
	}
	p := &parkedSession{s: s}
	p.timer = time.AfterFunc(idleLimit, func() {
		if cc.remove(key, p) {
			s.close()
		}
	})
	cc.idle[key] = append(cc.idle[key], p)
	return true
}

// take returns the most recently parked session for key, or nil.
func (cc *connCache) take(key string) *session {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	list := cc.idle[key]
	if len(list) == 0 {
		return nil
	}
	p := list[len(list)-1]
	cc.drop(key, len(list)-1)
	// If the timer already fired, its remove() finds nothing and leaves s
	// alone: whoever removes p from the list owns the session.
	p.timer.Stop()
	return p.s
}

func (cc *connCache) remove(key string, p *parkedSession) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for i, q := range cc.idle[key] {
		if q == p {
			cc.drop(key, i)
			return true
		}
	}
	return false
}

func (cc *connCache) drop(key string, i int) {
	list := cc.idle[key]
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(cc.idle, key)
	} else {
		cc.idle[key] = list
	}
}

// count returns how many sessions are parked (for tests and metrics).
func (cc *connCache) count() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := 0
	for _, l := range cc.idle {
		n += len(l)
	}
	return n
}

// closeAll closes every parked session and refuses new ones.
func (cc *connCache) closeAll() {
	cc.mu.Lock()
	cc.closed = true
	var all []*parkedSession
	for _, l := range cc.idle {
		all = append(all, l...)
	}
	cc.idle = map[string][]*parkedSession{}
	cc.mu.Unlock()
	for _, p := range all {
		p.timer.Stop()
		p.s.close()
	}
}
