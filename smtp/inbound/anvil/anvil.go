// Package anvil counts, per client address, what Postfix's anvil(8)
// server counts for smtpd: simultaneous connections, and connections,
// messages, recipients and failed AUTH attempts per time unit
// (anvil_rate_time_unit). It is in-process: each SMTP service has its own
// counters, as Postfix keys them by service and client address.
//
// Rates use Postfix's fixed windows: a client's window starts at its first
// event and lasts one time unit; the next event after it starts a new
// window with all rates at zero.
package anvil

import (
	"net/netip"
	"sync"
	"time"
)

// Event is a rate-limited kind of event.
type Event int

const (
	Connection Event = iota
	Message
	Recipient
	AuthFailure
	numEvents
)

// client is one address's counters.
type client struct {
	conns       int // open connections
	windowStart time.Time
	rates       [numEvents]int
}

// Anvil is safe for concurrent use.
type Anvil struct {
	unit time.Duration
	now  func() time.Time

	mu        sync.Mutex
	clients   map[netip.Addr]*client
	lastSweep time.Time
}

// New returns counters with time unit unit (anvil_rate_time_unit); now is
// the clock (nil: time.Now).
func New(unit time.Duration, now func() time.Time) *Anvil {
	if unit <= 0 {
		unit = 60 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Anvil{unit: unit, now: now, clients: map[netip.Addr]*client{}}
}

// entry returns the counters of addr, starting a new window when the old
// one is over. Callers hold a.mu.
func (a *Anvil) entry(addr netip.Addr, now time.Time) *client {
	a.sweep(now)
	c := a.clients[addr]
	if c == nil {
		c = &client{windowStart: now}
		a.clients[addr] = c
	}
	if now.Sub(c.windowStart) >= a.unit || now.Before(c.windowStart) {
		c.windowStart, c.rates = now, [numEvents]int{}
	}
	return c
}

// sweep drops clients with no connection and an expired window, once per
// time unit, so memory is bounded by the clients of the last time unit
// plus the connected ones.
func (a *Anvil) sweep(now time.Time) {
	if now.Sub(a.lastSweep) < a.unit {
		return
	}
	a.lastSweep = now
	for addr, c := range a.clients {
		if c.conns == 0 && now.Sub(c.windowStart) >= a.unit {
			delete(a.clients, addr)
		}
	}
}

// Connect records a new connection and returns the number of open
// connections from addr (this one included) and the connection rate.
func (a *Anvil) Connect(addr netip.Addr) (count, rate int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.entry(addr, a.now())
	c.conns++
	c.rates[Connection]++
	return c.conns, c.rates[Connection]
}

// Disconnect records the end of a connection that Connect counted.
func (a *Anvil) Disconnect(addr netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[addr]; c != nil && c.conns > 0 {
		c.conns--
	}
}

// Add records one event (Message, Recipient or AuthFailure) and returns
// its rate in the current window, this event included.
func (a *Anvil) Add(addr netip.Addr, e Event) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.entry(addr, a.now())
	c.rates[e]++
	return c.rates[e]
}

// Rate returns the current window's count of e without adding one.
func (a *Anvil) Rate(addr netip.Addr, e Event) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.clients[addr]
	if c == nil || a.now().Sub(c.windowStart) >= a.unit {
		return 0
	}
	return c.rates[e]
}

// Clients is the number of addresses being tracked (for tests and metrics).
func (a *Anvil) Clients() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.clients)
}
