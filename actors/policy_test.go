package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

var t0 = time.Date(2024, 11, 24, 5, 17, 55, 0, time.UTC)

func limits(conc, initial, cohorts int, rate time.Duration) DestLimits {
	return DestLimits{Concurrency: conc, InitialConcurrency: initial, FailedCohortLimit: cohorts, RateDelay: rate}.normalized("smtp")
}

// startAll starts deliveries until the policy refuses and returns how many
// started.
func startAll(p *destPolicy, now time.Time) int {
	n := 0
	for n < 1000 {
		ok, _ := p.mayStart(now)
		if !ok {
			break
		}
		p.started()
		n++
	}
	return n
}

func TestPolicyConcurrencyLimitNeverExceeded(t *testing.T) {
	clock := NewFakeClock(t0)
	p := newDestPolicy(limits(3, 5, 1, 0), 300*time.Second)
	if got := startAll(p, clock.Now()); got != 3 {
		t.Fatalf("started %d deliveries, want 3 (initial 5 clipped to the limit 3)", got)
	}
	for i := 0; i < 50; i++ {
		p.finished(clock.Now(), false, "", "")
		startAll(p, clock.Now())
		if p.active > 3 || p.window > 3 {
			t.Fatalf("round %d: active %d window %d exceeds the limit 3", i, p.active, p.window)
		}
		clock.Advance(time.Second)
	}
}

func TestPolicySlowStart(t *testing.T) {
	now := t0
	p := newDestPolicy(limits(8, 2, 1, 0), time.Minute)
	var windows []int
	for i := 0; i < 30; i++ {
		p.started()
		p.finished(now, false, "", "")
		windows = append(windows, p.window)
	}
	// The window grows by one after `window` successes: 2,2 -> 3 (x3) -> 4 ...
	want := []int{2, 3, 3, 3, 4, 4, 4, 4, 5}
	for i, w := range want {
		if windows[i] != w {
			t.Fatalf("windows %v, want prefix %v", windows[:len(want)], want)
		}
	}
	if windows[len(windows)-1] != 8 {
		t.Fatalf("window after 30 successes = %d, want the limit 8", windows[len(windows)-1])
	}
	// A failure shrinks the window by one.
	p.started()
	p.finished(now, true, "connect to mx: Connection refused", "4.4.1")
	if p.window != 7 || p.dead {
		t.Fatalf("after a failure: window %d dead %v, want 7, alive", p.window, p.dead)
	}
}

func TestPolicyRateDelay(t *testing.T) {
	clock := NewFakeClock(t0)
	p := newDestPolicy(limits(20, 5, 1, 5*time.Second), time.Minute)
	var starts []time.Time
	for len(starts) < 4 {
		ok, wait := p.mayStart(clock.Now())
		if !ok {
			if wait <= 0 {
				t.Fatalf("refused at %v without a wait", clock.Now())
			}
			clock.Advance(wait)
			continue
		}
		p.started()
		if ok2, _ := p.mayStart(clock.Now()); ok2 {
			t.Fatal("a second delivery may start while one runs under a rate delay")
		}
		starts = append(starts, clock.Now())
		clock.Advance(700 * time.Millisecond) // delivery time
		p.finished(clock.Now(), false, "", "")
	}
	for i := 1; i < len(starts); i++ {
		// The pause is between the end of one and the start of the next.
		if got := starts[i].Sub(starts[i-1]); got != 5700*time.Millisecond {
			t.Fatalf("start %d came %v after the previous one, want 5.7s", i, got)
		}
	}
	if p.window != 1 {
		t.Fatalf("window %d under a rate delay, want 1", p.window)
	}
}

func TestPolicyDeadDestinationAndRevival(t *testing.T) {
	clock := NewFakeClock(t0)
	p := newDestPolicy(limits(20, 3, 2, 0), 300*time.Second)
	fail := func() bool {
		p.started()
		return p.finished(clock.Now(), true, "connect to mx[192.0.2.1]:25: Connection refused", "4.4.1")
	}
	// Window 3 -> 2 -> 1, then two failed cohorts at concurrency 1.
	for i, wantDead := range []bool{false, false, false, true} {
		if got := fail(); got != wantDead {
			t.Fatalf("failure %d: becameDead=%v, want %v (window %d cohorts %d)", i+1, got, wantDead, p.window, p.failedCohorts)
		}
	}
	if ok, _ := p.mayStart(clock.Now()); ok {
		t.Fatal("a dead destination may start a delivery")
	}
	r := p.suspendedResult(4)
	if r.Status != queue.RcptDeferred || r.DSN != "4.4.1" || r.Relay != "none" ||
		r.Reply != "delivery temporarily suspended: connect to mx[192.0.2.1]:25: Connection refused" {
		t.Fatalf("suspended result %+v", r)
	}
	clock.Advance(299 * time.Second)
	if p.reviveDue(clock.Now()) {
		t.Fatal("revived before minimal_backoff_time")
	}
	clock.Advance(time.Second)
	if !p.reviveDue(clock.Now()) || p.dead || p.window != 3 {
		t.Fatalf("after 300s: dead %v window %d, want revived at the initial window 3", p.dead, p.window)
	}
	// A success between failures resets the cohort count.
	p = newDestPolicy(limits(1, 1, 2, 0), time.Minute)
	fail()
	p.started()
	p.finished(clock.Now(), false, "", "")
	if fail() {
		t.Fatal("dead after non-consecutive failed cohorts")
	}
	if !fail() {
		t.Fatal("not dead after two consecutive failed cohorts")
	}
	// A forced revival (flush).
	p.revive()
	if ok, _ := p.mayStart(clock.Now()); !ok {
		t.Fatal("revived destination refuses deliveries")
	}
}

func TestConnectionFailure(t *testing.T) {
	def := queue.RcptDeferred
	tests := []struct {
		name    string
		results []Result
		want    bool
	}{
		{"connection refused", []Result{{Status: def, Relay: "none"}, {Status: def}}, true},
		{"4xx from a live server", []Result{{Status: def, Relay: "mx[192.0.2.1]:25"}}, false},
		{"one sent", []Result{{Status: def, Relay: "none"}, {Status: queue.RcptSent, Relay: "none"}}, false},
		{"bounced by error(8)", []Result{{Status: queue.RcptBounced, Relay: "none"}}, false},
		{"no results", nil, true},
	}
	for _, tt := range tests {
		if got := connectionFailure(tt.results); got != tt.want {
			t.Errorf("%s: connectionFailure = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBackoffSequence(t *testing.T) {
	lo, hi := 300*time.Second, 4000*time.Second
	var age time.Duration
	want := []int{300, 600, 1200, 2400, 4000, 4000, 4000}
	for attempts, w := range want {
		d := backoff(attempts, age, lo, hi)
		if d != time.Duration(w)*time.Second {
			t.Fatalf("attempt %d (age %v): backoff %v, want %ds", attempts, age, d, w)
		}
		age += d
	}
	// A requeued message (attempts reset) still backs off by its age.
	if d := backoff(0, 2000*time.Second, lo, hi); d != 2000*time.Second {
		t.Fatalf("old message with no attempts: backoff %v, want its age 2000s", d)
	}
	if d := backoff(1000, 0, lo, hi); d != hi {
		t.Fatalf("many attempts: backoff %v, want the maximum", d)
	}
}

func TestExpired(t *testing.T) {
	cfg := DefaultConfig("n1")
	cfg.BounceQueueLifetime = 24 * time.Hour
	now := t0
	tests := []struct {
		sender string
		age    time.Duration
		want   bool
	}{
		{"a@example.com", 5*24*time.Hour - time.Second, false},
		{"a@example.com", 5 * 24 * time.Hour, true},
		{"", 23 * time.Hour, false},
		{"", 25 * time.Hour, true},
	}
	for _, tt := range tests {
		m := queue.Message{Sender: tt.sender, Arrival: now.Add(-tt.age)}
		if got := expired(&m, now, &cfg); got != tt.want {
			t.Errorf("sender %q age %v: expired %v, want %v", tt.sender, tt.age, got, tt.want)
		}
	}
	cfg.MaxQueueLifetime = 0 // Postfix: a single delivery attempt
	if m := (queue.Message{Sender: "a@b", Arrival: now}); !expired(&m, now, &cfg) {
		t.Error("maximal_queue_lifetime=0 does not expire at once")
	}
}

func TestSoftBounce(t *testing.T) {
	tests := []struct{ in, want Result }{
		{Result{Status: queue.RcptBounced, DSN: "5.1.1"}, Result{Status: queue.RcptDeferred, DSN: "4.1.1"}},
		{Result{Status: queue.RcptBounced}, Result{Status: queue.RcptDeferred}},
		{Result{Status: queue.RcptSent, DSN: "2.0.0"}, Result{Status: queue.RcptSent, DSN: "2.0.0"}},
		{Result{Status: queue.RcptDeferred, DSN: "4.4.1"}, Result{Status: queue.RcptDeferred, DSN: "4.4.1"}},
	}
	for _, tt := range tests {
		if got := softBounce(tt.in); got != tt.want {
			t.Errorf("softBounce(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestWantsNotice(t *testing.T) {
	tests := []struct {
		notify, kind string
		want         bool
	}{
		{"", NoticeFailure, true},
		{"", NoticeDelay, true},
		{"", NoticeSuccess, false},
		{"NEVER", NoticeFailure, false},
		{"SUCCESS,FAILURE", NoticeSuccess, true},
		{"success", NoticeSuccess, true},
		{"SUCCESS", NoticeFailure, false},
		{"DELAY", NoticeDelay, true},
	}
	for _, tt := range tests {
		if got := wantsNotice(tt.notify, tt.kind); got != tt.want {
			t.Errorf("wantsNotice(%q, %q) = %v, want %v", tt.notify, tt.kind, got, tt.want)
		}
	}
}

func TestFakeClockOrder(t *testing.T) {
	c := NewFakeClock(t0)
	var got []string
	c.AfterFunc(2*time.Second, func() { got = append(got, "b") })
	c.AfterFunc(time.Second, func() {
		got = append(got, "a")
		c.AfterFunc(500*time.Millisecond, func() { got = append(got, "a2") })
	})
	stopped := c.AfterFunc(1500*time.Millisecond, func() { got = append(got, "never") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	c.AfterFunc(3*time.Second, func() { got = append(got, "late") })
	c.Advance(2 * time.Second)
	if want := "a a2 b"; strings.Join(got, " ") != want {
		t.Fatalf("fired %q, want %q", strings.Join(got, " "), want)
	}
	if !c.Now().Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("now %v", c.Now())
	}
	if c.Pending() != 1 {
		t.Fatalf("pending %d, want 1", c.Pending())
	}
}
