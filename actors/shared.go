package actors

import (
	"sort"
	"sync"
)

// processSlots is a transport's master.cf maxproc: the number of deliveries
// that may run at once across all of its destinations. Destinations that
// find no free slot leave a wake-up function and are called back when one is
// released.
type processSlots struct {
	mu      sync.Mutex
	limit   int // 0 = no limit
	used    int
	waiters map[destKey]func()
}

func newProcessSlots(limit int) *processSlots {
	return &processSlots{limit: limit, waiters: make(map[destKey]func())}
}

// acquire takes a slot, or records wake for when one frees up.
func (p *processSlots) acquire(key destKey, wake func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.used >= p.limit {
		p.waiters[key] = wake
		return false
	}
	p.used++
	return true
}

// release frees a slot and wakes every waiting destination; those that lose
// the race register again.
func (p *processSlots) release() {
	p.mu.Lock()
	if p.used > 0 {
		p.used--
	}
	var wake []func()
	for k, f := range p.waiters {
		wake = append(wake, f)
		delete(p.waiters, k)
	}
	p.mu.Unlock()
	for _, f := range wake {
		f()
	}
}

// inUse returns the number of slots taken.
func (p *processSlots) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// statusBoard holds the latest DestStatus of every destination actor, so
// Destinations can answer without asking actors.
type statusBoard struct {
	mu sync.Mutex
	m  map[destKey]DestStatus
}

func (b *statusBoard) set(k destKey, st DestStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[destKey]DestStatus)
	}
	b.m[k] = st
}

func (b *statusBoard) remove(k destKey) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, k)
}

func (b *statusBoard) list() []DestStatus {
	b.mu.Lock()
	out := make([]DestStatus, 0, len(b.m))
	for _, st := range b.m {
		out = append(out, st)
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Transport != out[j].Transport {
			return out[i].Transport < out[j].Transport
		}
		return out[i].Nexthop < out[j].Nexthop
	})
	return out
}

// inflight counts deliveries whose results are not yet committed, so Stop
// can let them finish.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed while n == 0
}

func newInflight() *inflight {
	z := make(chan struct{})
	close(z)
	return &inflight{zero: z}
}

func (f *inflight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return
	}
	f.n--
	if f.n == 0 {
		close(f.zero)
	}
}

// idle returns a channel closed when no delivery is in flight.
func (f *inflight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zero
}
