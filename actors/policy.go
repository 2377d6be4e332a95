package actors

import (
	"strings"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

// destPolicy decides, for one destination, when a delivery may start and how
// the concurrency window moves. It is a plain value driven by the caller's
// clock, so tests can walk it through every state without actors.
//
// Postfix's concurrency feedback adds 1/window per success and subtracts
// 1/window per failure. This is the same average behaviour in whole steps:
// the window grows by one after `window` consecutive successes and shrinks by
// one on every failure. A failure while the window is already 1 counts as one
// failed pseudo-cohort; FailedCohortLimit of them in a row make the
// destination dead for deadFor (minimal_backoff_time), during which nothing
// is attempted. Any success resets the cohort count.
type destPolicy struct {
	limits  DestLimits
	deadFor time.Duration

	window        int // current concurrency window
	successes     int // successes since the window last moved
	failedCohorts int
	active        int

	lastEnd   time.Time // end of the latest delivery, for the rate delay
	dead      bool
	deadUntil time.Time
	reason    string // text of the latest connection-level failure
	dsn       string
}

func newDestPolicy(l DestLimits, deadFor time.Duration) *destPolicy {
	p := &destPolicy{limits: l, deadFor: deadFor}
	p.window = p.initialWindow()
	return p
}

// maxWindow is the hard limit of the window; 0 means unlimited.
func (p *destPolicy) maxWindow() int {
	if p.limits.RateDelay > 0 {
		return 1
	}
	return p.limits.Concurrency
}

func (p *destPolicy) initialWindow() int {
	w := p.limits.InitialConcurrency
	if m := p.maxWindow(); m > 0 && w > m {
		w = m
	}
	if w < 1 {
		w = 1
	}
	return w
}

// mayStart reports whether one more delivery may start at now. When the
// rate delay is what holds it back, wait is how long until it may.
func (p *destPolicy) mayStart(now time.Time) (ok bool, wait time.Duration) {
	if p.dead || p.active >= p.window {
		return false, 0
	}
	if d := p.limits.RateDelay; d > 0 && !p.lastEnd.IsZero() {
		if next := p.lastEnd.Add(d); now.Before(next) {
			return false, next.Sub(now)
		}
	}
	return true, 0
}

// started records a delivery that has begun.
func (p *destPolicy) started() { p.active++ }

// finished records the end of a delivery. failed means a connection-level
// failure (see connectionFailure). It reports whether the destination just
// became dead.
func (p *destPolicy) finished(now time.Time, failed bool, reason, dsn string) (becameDead bool) {
	if p.active > 0 {
		p.active--
	}
	p.lastEnd = now
	if !failed {
		p.failedCohorts = 0
		if p.dead {
			// The site answered after all: revive it, as Postfix's positive
			// feedback does for a throttled queue.
			p.revive()
			return false
		}
		p.successes++
		if p.successes >= p.window {
			p.successes = 0
			if m := p.maxWindow(); m == 0 || p.window < m {
				p.window++
			}
		}
		return false
	}
	p.reason, p.dsn = reason, dsn
	p.successes = 0
	if p.dead {
		return false
	}
	if p.window > 1 {
		p.window--
		return false
	}
	p.failedCohorts++
	if p.failedCohorts < p.limits.FailedCohortLimit {
		return false
	}
	p.dead = true
	p.deadUntil = now.Add(p.deadFor)
	return true
}

// reviveDue revives a dead destination whose suspension is over and reports
// whether it did.
func (p *destPolicy) reviveDue(now time.Time) bool {
	if !p.dead || now.Before(p.deadUntil) {
		return false
	}
	p.revive()
	return true
}

// revive ends a suspension at once (timer, flush, or a success).
func (p *destPolicy) revive() {
	p.dead = false
	p.deadUntil = time.Time{}
	p.failedCohorts = 0
	p.successes = 0
	p.window = p.initialWindow()
}

// suspendedResult is what a queued job's recipients get while the
// destination is dead.
func (p *destPolicy) suspendedResult(index int) Result {
	dsn := p.dsn
	if !strings.HasPrefix(dsn, "4.") {
		dsn = "4.4.1"
	}
	reason := p.reason
	if reason == "" {
		reason = "destination unavailable"
	}
	return Result{Index: index, Status: queue.RcptDeferred, DSN: dsn,
		Reply: "delivery temporarily suspended: " + reason, Relay: "none"}
}

// connectionFailure reports whether a job's results are a dead-site signal:
// every recipient deferred without reaching a server. A 4xx reply from a
// live server is not one.
func connectionFailure(results []Result) bool {
	if len(results) == 0 {
		return true
	}
	for _, r := range results {
		if r.Status != queue.RcptDeferred || (r.Relay != "" && r.Relay != "none") {
			return false
		}
	}
	return true
}

// backoff is the delay before the next attempt of a message deferred for the
// attempts'th time (0 = after its first attempt): minimal_backoff_time
// doubled per earlier attempt, at least the message's age as Postfix's qmgr
// uses, clipped to [lo, hi] (minimal and maximal_backoff_time).
func backoff(attempts int, age, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempts && d < hi; i++ {
		d *= 2
	}
	d = max(d, age)
	return min(max(d, lo), hi)
}

// expired reports whether a message has outlived its queue lifetime
// (bounce_queue_lifetime for the null sender, as Postfix does for bounces).
func expired(m *queue.Message, now time.Time, cfg *Config) bool {
	life := cfg.MaxQueueLifetime
	if m.Sender == "" {
		life = cfg.BounceQueueLifetime
	}
	return !now.Before(m.Arrival.Add(life))
}

// softBounce turns a permanent failure into a temporary one (soft_bounce=yes):
// status deferred and a 5.x.x code becomes 4.x.x.
func softBounce(r Result) Result {
	if r.Status != queue.RcptBounced {
		return r
	}
	r.Status = queue.RcptDeferred
	if strings.HasPrefix(r.DSN, "5") {
		r.DSN = "4" + r.DSN[1:]
	}
	return r
}

// wantsNotice reports whether a recipient's DSN NOTIFY= asks for a notice of
// the given kind. Without NOTIFY, failures and delays are reported and
// successes are not, as in Postfix.
func wantsNotice(notify, kind string) bool {
	if notify == "" {
		return kind != NoticeSuccess
	}
	for _, w := range strings.Split(notify, ",") {
		w = strings.TrimSpace(w)
		switch {
		case strings.EqualFold(w, "NEVER"):
			return false
		case strings.EqualFold(w, kind):
			return true
		}
	}
	return false
}
