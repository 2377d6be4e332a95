package actors

import (
	"sort"
	"sync"
	"time"
)

// Clock is the scheduler's time source. Tests use FakeClock to drive backoff,
// rate delays and timers without sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or the goroutine advancing a
	// fake clock) once d has passed.
	AfterFunc(d time.Duration, f func()) Stopper
}

// Stopper cancels a pending AfterFunc; it reports whether the call was
// prevented.
type Stopper interface {
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) Stopper { return time.AfterFunc(d, f) }

// FakeClock is a manual clock for tests. Timers fire, in time order, from
// Advance.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *FakeClock
	at    time.Time
	seq   int // firing order among timers due at the same instant
	f     func()
}

// NewFakeClock returns a FakeClock set to start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc registers f to run when the clock has been advanced by d. Like
// time.AfterFunc, a d <= 0 runs f at once in its own goroutine.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Stopper {
	if d <= 0 {
		go f()
		return firedTimer{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{clock: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// firedTimer is the Stopper of a timer that ran immediately.
type firedTimer struct{}

func (firedTimer) Stop() bool { return false }

// Stop removes the timer if it has not fired.
func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock forward by d, firing due timers in order, each
// with the clock set to its due time. Timers created by a firing callback
// fire too if they fall within the advanced span.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.timers, func(i, j int) bool {
			if !c.timers[i].at.Equal(c.timers[j].at) {
				return c.timers[i].at.Before(c.timers[j].at)
			}
			return c.timers[i].seq < c.timers[j].seq
		})
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending returns how many timers are waiting; tests use it to wait until
// an actor has armed the timer they are about to fire.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextTimer returns the due time of the earliest pending timer.
func (c *FakeClock) NextTimer() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for i, t := range c.timers {
		if i == 0 || t.at.Before(first) {
			first = t.at
		}
	}
	return first, len(c.timers) > 0
}
