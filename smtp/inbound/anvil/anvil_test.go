package anvil

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("2001:db8::2")
)

func TestConnectionCount(t *testing.T) {
	a := New(time.Minute, (&fakeClock{t: time.Unix(1e9, 0)}).now)
	for i := 1; i <= 3; i++ {
		if n, r := a.Connect(ip1); n != i || r != i {
			t.Fatalf("connect %d: count %d rate %d", i, n, r)
		}
	}
	if n, _ := a.Connect(ip2); n != 1 {
		t.Fatalf("other client count %d", n)
	}
	a.Disconnect(ip1)
	a.Disconnect(ip1)
	if n, r := a.Connect(ip1); n != 2 || r != 4 {
		t.Fatalf("after two disconnects: count %d rate %d", n, r)
	}
	// Disconnecting more often than connecting never goes negative.
	for range 10 {
		a.Disconnect(ip2)
	}
	if n, _ := a.Connect(ip2); n != 1 {
		t.Fatalf("count after extra disconnects %d", n)
	}
}

func TestRateWindows(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	a := New(10*time.Second, clock.now)
	steps := []struct {
		advance time.Duration
		event   Event
		want    int
	}{
		{0, Message, 1},
		{time.Second, Message, 2},
		{time.Second, Recipient, 1},
		{time.Second, AuthFailure, 1},
		{6 * time.Second, Message, 3}, // 9s after the window started
		{time.Second, Message, 1},     // 10s: a new window
		{0, Recipient, 1},             // the new window reset every rate
		{20 * time.Second, AuthFailure, 1},
	}
	for i, s := range steps {
		clock.advance(s.advance)
		if got := a.Add(ip1, s.event); got != s.want {
			t.Fatalf("step %d: rate %d, want %d", i, got, s.want)
		}
	}
	if got := a.Rate(ip1, AuthFailure); got != 1 {
		t.Fatalf("Rate = %d", got)
	}
	clock.advance(10 * time.Second)
	if got := a.Rate(ip1, AuthFailure); got != 0 {
		t.Fatalf("Rate after the window = %d", got)
	}
	if got := a.Rate(ip2, Message); got != 0 {
		t.Fatalf("unknown client Rate = %d", got)
	}
}

func TestSweepBoundsMemory(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	a := New(time.Second, clock.now)
	held := netip.MustParseAddr("198.51.100.1")
	a.Connect(held)
	for i := range 1000 {
		a.Add(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Message)
	}
	if a.Clients() != 1001 {
		t.Fatalf("clients %d", a.Clients())
	}
	clock.advance(2 * time.Second)
	a.Add(ip1, Message)
	// Only the connected client and the new one are left.
	if a.Clients() != 2 {
		t.Fatalf("clients after sweep %d", a.Clients())
	}
}

func TestConcurrent(t *testing.T) {
	a := New(time.Hour, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", g%2))
			for range 100 {
				a.Connect(addr)
				a.Add(addr, Recipient)
				a.Disconnect(addr)
			}
		}()
	}
	wg.Wait()
	if n, r := a.Connect(netip.MustParseAddr("192.0.2.0")); n != 1 || r != 401 {
		t.Fatalf("count %d rate %d", n, r)
	}
}
