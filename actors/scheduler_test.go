package actors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

func TestDeliveredMessageIsRemovedAndLogged(t *testing.T) {
	h := newHarness(t)
	h.router.routes["alias.example"] = Route{Transport: "smtp", Nexthop: "example.com", Recipient: "u@example.com"}
	id := h.enqueue("s@example.org", 2500*time.Millisecond, "u@alias.example")
	h.start()
	h.eventually("message removed", func() bool { return h.gone(id) })
	h.waitLog(id + ": removed")

	log := h.logBuf.String()
	for _, re := range []string{
		`mx1 postfix/qmgr\[\d+\]: ` + id + `: from=<s@example\.org>, size=\d+, nrcpt=1 \(queue active\)`,
		`mx1 postfix/smtp\[\d+\]: ` + id + `: to=<u@example\.com>, orig_to=<u@alias\.example>, relay=mx\.example\.com\[192\.0\.2\.1\]:25, ` +
			`delay=2\.5, delays=2\.5/0/0\.05/0\.06, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as 4XyZ\)`,
		`mx1 postfix/qmgr\[\d+\]: ` + id + `: removed`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("log has no line matching %s\n%s", re, log)
		}
	}
	if strings.Index(log, "status=sent") > strings.Index(log, ": removed") {
		t.Error("removed logged before the delivery")
	}
	job := h.smtp.jobs[0]
	if job.Nexthop != "example.com" || job.Transport != "smtp" || job.Recipients[0].Addr != "u@example.com" ||
		job.Recipients[0].OrigAddr != "u@alias.example" || job.Sender != "s@example.org" {
		t.Errorf("job %+v", job)
	}
	if !strings.Contains(h.smtp.bodyBytes[0], "Subject: test "+id) {
		t.Errorf("body %q", h.smtp.bodyBytes[0])
	}
	// The results were committed before the removal was logged.
	if rs := h.applier.commands(queue.CmdResult); len(rs) != 1 || rs[0].Results[0].Status != queue.RcptSent {
		t.Errorf("CmdResult commits: %+v", rs)
	}
	if act := h.applier.commands(queue.CmdActivate); len(act) != 1 || act[0].Node != "n1" {
		t.Errorf("CmdActivate commits: %+v", act)
	}
}

// While an activation commits, newly enqueued messages gather; the next
// check activates them with one commit, not one each.
func TestActivationsAreBatched(t *testing.T) {
	h := newHarness(t)
	h.applier.slow = func(c *queue.Command) time.Duration {
		if c.Type == queue.CmdActivate {
			return 20 * time.Millisecond
		}
		return 0
	}
	h.start()
	var ids []string
	for i := range 60 {
		ids = append(ids, h.enqueue("s@example.org", 0, fmt.Sprintf("u%d@example.com", i)))
	}
	for _, id := range ids {
		h.waitLog(id + ": removed")
	}
	act := h.applier.commands(queue.CmdActivate)
	n := 0
	for _, c := range act {
		n += len(c.IDs)
	}
	if n != len(ids) || len(act) > 10 {
		t.Fatalf("%d CmdActivate commits for %d IDs (%d messages); want them batched", len(act), n, len(ids))
	}
}

func TestDeferredMessageGetsBackoff(t *testing.T) {
	h := newHarness(t)
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{deferred(job.Recipients[0].Index)} }
	id := h.enqueue("s@example.org", 0, "u@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	m, _ := h.fsm.Get(id)
	if !m.NextAttempt.Equal(t0.Add(300*time.Second)) || m.Attempts != 1 ||
		!strings.Contains(m.Reason, "450 4.7.1 try again later") {
		t.Fatalf("after the first attempt: next %v attempts %d reason %q", m.NextAttempt, m.Attempts, m.Reason)
	}
	h.waitLog("status=deferred (host mx.example.com[192.0.2.1] said: 450 4.7.1 try again later (in reply to RCPT TO command))")
	if d := h.applier.commands(queue.CmdDefer); len(d) != 1 || !d[0].NextAttempt.Equal(t0.Add(300*time.Second)) {
		t.Fatalf("CmdDefer %+v", d)
	}

	// Not before it is due; then the timer brings it back and it doubles.
	h.clock.Advance(299 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if h.smtp.calls() != 1 {
		t.Fatalf("retried before the backoff: %d calls", h.smtp.calls())
	}
	h.clock.Advance(time.Second)
	h.eventually("second attempt", func() bool {
		m, _ := h.fsm.Get(id)
		return m.Attempts == 2 && m.State == queue.Deferred
	})
	m, _ = h.fsm.Get(id)
	if want := t0.Add(300*time.Second + 600*time.Second); !m.NextAttempt.Equal(want) {
		t.Fatalf("second backoff: next %v, want %v", m.NextAttempt, want)
	}
}

func TestMixedRecipientResults(t *testing.T) {
	h := newHarness(t)
	h.smtp.script = func(job *Job, _ int) []Result {
		var out []Result
		for _, r := range job.Recipients {
			switch {
			case strings.HasPrefix(r.Addr, "ok"):
				out = append(out, sent(r.Index))
			case strings.HasPrefix(r.Addr, "bad"):
				out = append(out, bounced(r.Index))
			default:
				out = append(out, deferred(r.Index))
			}
		}
		return out
	}
	id := h.enqueue("s@example.org", 0, "ok@example.com", "bad@example.com", "later@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	m, _ := h.fsm.Get(id)
	want := []queue.RcptStatus{queue.RcptSent, queue.RcptBounced, queue.RcptDeferred}
	for i, w := range want {
		if m.Recipients[i].Status != w {
			t.Errorf("recipient %d: %s, want %s", i, m.Recipients[i].Status, w)
		}
	}
	if m.Recipients[1].DSN != "5.1.1" {
		t.Errorf("bounced DSN %q", m.Recipients[1].DSN)
	}
	h.waitLog(id + ": sender non-delivery notification: B00000000001")
	for _, s := range []string{"to=<ok@example.com>", "status=sent", "to=<bad@example.com>", "dsn=5.1.1, status=bounced",
		"to=<later@example.com>", "dsn=4.7.1, status=deferred", id + ": sender non-delivery notification: B00000000001"} {
		if len(h.logLines(s)) == 0 {
			t.Errorf("no log line with %q\n%s", s, h.logBuf.String())
		}
	}
	if len(h.logLines(": removed")) != 0 {
		t.Error("a deferred message was logged as removed")
	}
	ns := h.notifier.list()
	if len(ns) != 1 || ns[0].kind != NoticeFailure || len(ns[0].rcpts) != 1 || ns[0].rcpts[0].Addr != "bad@example.com" ||
		ns[0].rcpts[0].Status != queue.RcptBounced || !strings.Contains(ns[0].rcpts[0].Reason, "User unknown") {
		t.Fatalf("notices %+v", ns)
	}
	// On the retry only the deferred recipient is attempted.
	h.smtp.mu.Lock()
	h.smtp.script = nil
	h.smtp.mu.Unlock()
	h.clock.Advance(300 * time.Second)
	h.eventually("removal", func() bool { return h.gone(id) })
	if j := h.smtp.jobs[1]; len(j.Recipients) != 1 || j.Recipients[0].Addr != "later@example.com" || j.Recipients[0].Index != 2 {
		t.Fatalf("retry job %+v", j.Recipients)
	}
}

// The docomo.ne.jp case: a dedicated transport with one session and one
// recipient per delivery, however many messages are waiting.
func TestConcurrencyOneRecipientLimitOne(t *testing.T) {
	h := newHarness(t)
	h.router.routes["docomo.ne.jp"] = Route{Transport: "docomo-smtp", Nexthop: "docomo.ne.jp"}
	docomo := newFakeTransport(h.clock)
	docomo.hold = time.Millisecond
	h.transport["docomo-smtp"] = docomo
	h.limits["docomo-smtp"] = DestLimits{Concurrency: 1, InitialConcurrency: 5, RecipientLimit: 1,
		FailedCohortLimit: 1, ProcessLimit: 1, LogName: "smtp"}
	var ids []string
	for i := 0; i < 50; i++ {
		ids = append(ids, h.enqueue("s@example.org", 0, "a@docomo.ne.jp", "b@docomo.ne.jp", "c@example.com"))
	}
	h.start()
	h.eventually("all 50 removed and logged", func() bool { return len(h.logLines(": removed")) == 50 })
	docomo.mu.Lock()
	defer docomo.mu.Unlock()
	if len(docomo.jobs) != 100 {
		t.Fatalf("%d docomo deliveries, want 100 (one per recipient)", len(docomo.jobs))
	}
	for _, j := range docomo.jobs {
		if len(j.Recipients) != 1 {
			t.Fatalf("a docomo delivery had %d recipients", len(j.Recipients))
		}
	}
	if docomo.maxPer["docomo.ne.jp"] != 1 || docomo.maxTotal != 1 {
		t.Fatalf("max concurrent docomo deliveries %d (total %d), want 1", docomo.maxPer["docomo.ne.jp"], docomo.maxTotal)
	}
	if n := len(h.logLines("postfix/smtp[")); n != 150 {
		t.Errorf("%d smtp log lines, want 150 (the clone service logs as smtp)", n)
	}
	if n := len(h.logLines("docomo-smtp[")); n != 0 {
		t.Errorf("%d lines logged as docomo-smtp", n)
	}
}

func TestProcessLimitAcrossDestinations(t *testing.T) {
	h := newHarness(t)
	h.smtp.hold = 2 * time.Millisecond
	h.limits["smtp"] = DestLimits{Concurrency: 20, InitialConcurrency: 5, RecipientLimit: 50, FailedCohortLimit: 1, ProcessLimit: 3}
	for i := 0; i < 40; i++ {
		h.enqueue("s@example.org", 0, "u@d"+string(rune('a'+i%10))+".example")
	}
	h.start()
	h.eventually("all removed", func() bool { return h.fsm.Len() == 0 })
	h.smtp.mu.Lock()
	if h.smtp.maxTotal > 3 {
		t.Fatalf("%d deliveries ran at once, maxproc is 3", h.smtp.maxTotal)
	}
	if len(h.smtp.jobs) != 40 {
		t.Fatalf("%d deliveries, want 40", len(h.smtp.jobs))
	}
	h.smtp.mu.Unlock()
	// Idle destinations are stopped and leave the status list.
	h.eventually("idle destinations gone", func() bool { return len(h.sched.Destinations()) == 0 })
}

func TestRateDelaySpacing(t *testing.T) {
	h := newHarness(t)
	h.limits["smtp"] = DestLimits{Concurrency: 5, InitialConcurrency: 5, RecipientLimit: 1, FailedCohortLimit: 1,
		ProcessLimit: 100, RateDelay: 5 * time.Second}
	for i := 0; i < 4; i++ {
		h.enqueue("s@example.org", 0, "u@docomo.ne.jp")
	}
	h.start()
	for n := 1; n <= 4; n++ {
		h.eventually("delivery start", func() bool { return h.smtp.calls() >= n })
		if n < 4 {
			// Nothing may start before the fake clock moves on.
			time.Sleep(10 * time.Millisecond)
			if c := h.smtp.calls(); c != n {
				t.Fatalf("%d deliveries without the clock moving, want %d", c, n)
			}
			h.eventually("rate delay timer", func() bool {
				at, ok := h.clock.NextTimer()
				return ok && !at.After(h.clock.Now().Add(5*time.Second))
			})
			h.clock.Advance(5 * time.Second)
		}
	}
	h.eventually("all removed", func() bool { return h.fsm.Len() == 0 })
	h.smtp.mu.Lock()
	defer h.smtp.mu.Unlock()
	for i, s := range h.smtp.starts {
		if want := t0.Add(time.Duration(i) * 5 * time.Second); !s.Equal(want) {
			t.Errorf("delivery %d started at %v, want %v", i, s.Sub(t0), want.Sub(t0))
		}
	}
	if h.smtp.maxTotal != 1 {
		t.Errorf("max concurrent %d under a rate delay", h.smtp.maxTotal)
	}
}

func TestDeadDestinationSuspendsQueuedJobs(t *testing.T) {
	h := newHarness(t)
	h.limits["smtp"] = DestLimits{Concurrency: 1, InitialConcurrency: 1, RecipientLimit: 50, FailedCohortLimit: 1, ProcessLimit: 100}
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{refused(job.Recipients[0].Index)} }
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, h.enqueue("s@example.org", 0, "u@example.com"))
	}
	h.start()
	h.eventually("all deferred", func() bool {
		for _, id := range ids {
			if h.state(id) != queue.Deferred {
				return false
			}
		}
		return true
	})
	if c := h.smtp.calls(); c != 1 {
		t.Fatalf("%d connection attempts to a dead destination, want 1", c)
	}
	suspended := h.logLines("status=deferred (delivery temporarily suspended: connect to mx.example.com[192.0.2.1]:25: Connection refused)")
	if len(suspended) != 3 {
		t.Fatalf("%d suspended lines, want 3\n%s", len(suspended), h.logBuf.String())
	}
	if !strings.Contains(suspended[0], "postfix/error[") || !strings.Contains(suspended[0], "relay=none") {
		t.Errorf("suspended line %q", suspended[0])
	}
	ds := h.sched.Destinations()
	if len(ds) != 1 || !ds[0].Dead || ds[0].Transport != "smtp" || ds[0].Nexthop != "example.com" ||
		!strings.Contains(ds[0].Reason, "Connection refused") {
		t.Fatalf("destinations %+v", ds)
	}
	// A new message for the dead destination is deferred without an attempt.
	late := h.enqueue("s@example.org", 0, "v@example.com")
	h.eventually("late message deferred", func() bool { return h.state(late) == queue.Deferred })
	if c := h.smtp.calls(); c != 1 {
		t.Fatalf("%d attempts, want still 1", c)
	}
	// After minimal_backoff_time the destination lives again and the
	// messages, due at the same time, go out.
	h.smtp.mu.Lock()
	h.smtp.script = nil
	h.smtp.mu.Unlock()
	h.clock.Advance(300 * time.Second)
	h.eventually("all delivered", func() bool { return h.fsm.Len() == 0 })
	h.eventually("destination revived and idle", func() bool {
		for _, d := range h.sched.Destinations() {
			if d.Dead {
				return false
			}
		}
		return true
	})
}

func TestLiveServer4xxIsNotDeadSite(t *testing.T) {
	h := newHarness(t)
	h.limits["smtp"] = DestLimits{Concurrency: 1, InitialConcurrency: 1, RecipientLimit: 1, FailedCohortLimit: 1, ProcessLimit: 100}
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{deferred(job.Recipients[0].Index)} }
	id := h.enqueue("s@example.org", 0, "a@example.com", "b@example.com", "c@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	if c := h.smtp.calls(); c != 3 {
		t.Fatalf("%d attempts, want 3: a 4xx reply is not a dead site", c)
	}
	if n := len(h.logLines("suspended")); n != 0 {
		t.Fatalf("%d suspended lines", n)
	}
}

func TestFlushReactivatesDeferredAndRevives(t *testing.T) {
	h := newHarness(t)
	h.limits["smtp"] = DestLimits{Concurrency: 1, InitialConcurrency: 1, RecipientLimit: 50, FailedCohortLimit: 1, ProcessLimit: 100}
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{refused(job.Recipients[0].Index)} }
	id := h.enqueue("s@example.org", 0, "u@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	h.eventually("dead destination", func() bool {
		ds := h.sched.Destinations()
		return len(ds) == 1 && ds[0].Dead
	})
	h.smtp.mu.Lock()
	h.smtp.script = nil
	h.smtp.mu.Unlock()
	h.sched.Flush() // no clock movement: only the flush makes it due
	h.eventually("delivered after flush", func() bool { return h.gone(id) })
	if f := h.applier.commands(queue.CmdFlush); len(f) != 1 || !f[0].All || f[0].Queue != queue.Deferred {
		t.Fatalf("CmdFlush commits %+v", f)
	}
	if c := h.smtp.calls(); c != 2 {
		t.Fatalf("%d attempts, want 2", c)
	}
}

func TestFlushCommittedElsewhere(t *testing.T) {
	h := newHarness(t)
	h.smtp.script = func(job *Job, call int) []Result {
		if call == 0 {
			return []Result{deferred(job.Recipients[0].Index)}
		}
		return []Result{sent(job.Recipients[0].Index)}
	}
	id := h.enqueue("s@example.org", 0, "u@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	// postqueue -f on another node: the committed CmdFlush reaches Notify.
	if _, err := h.applier.Apply(context.Background(), &queue.Command{Type: queue.CmdFlush, All: true, Now: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	h.eventually("delivered after flush", func() bool { return h.gone(id) })
}

func TestRestartRedeliversActiveMessages(t *testing.T) {
	h := newHarness(t)
	mine := h.enqueue("s@example.org", 0, "u@example.com")
	other := h.enqueue("s@example.org", 0, "v@example.com")
	held := h.enqueue("s@example.org", 0, "w@example.com")
	// A previous run activated them, then crashed.
	for _, c := range []*queue.Command{
		{Type: queue.CmdActivate, IDs: []string{mine}, Node: "n1"},
		{Type: queue.CmdActivate, IDs: []string{other}, Node: "n2"},
		{Type: queue.CmdHold, IDs: []string{held}},
	} {
		if _, err := h.applier.Apply(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	h.start()
	h.eventually("own active message delivered", func() bool { return h.gone(mine) })
	time.Sleep(20 * time.Millisecond)
	if h.state(other) != queue.Active || h.state(held) != queue.Hold {
		t.Fatalf("other node's message %s, held message %s: must be untouched", h.state(other), h.state(held))
	}
	if c := h.smtp.calls(); c != 1 {
		t.Fatalf("%d deliveries, want 1", c)
	}
	if act := h.applier.commands(queue.CmdActivate); len(act) != 2 {
		t.Fatalf("re-delivery committed a new CmdActivate: %+v", act)
	}
}

func TestNotifierOnBounceAndNullSender(t *testing.T) {
	h := newHarness(t)
	h.router.routes["nowhere.example"] = Route{Transport: "error", Nexthop: "5.1.1 mailbox unavailable"}
	withSender := h.enqueue("s@example.org", 0, "a@nowhere.example", "b@nowhere.example NOTIFY=NEVER")
	nullSender := h.enqueue("", 0, "c@nowhere.example")
	h.start()
	h.eventually("both removed", func() bool { return h.gone(withSender) && h.gone(nullSender) })
	h.waitLog(nullSender + ": removed")
	h.waitLog(withSender + ": removed")
	ns := h.notifier.list()
	if len(ns) != 1 || ns[0].id != withSender || ns[0].kind != NoticeFailure || len(ns[0].rcpts) != 1 ||
		ns[0].rcpts[0].Addr != "a@nowhere.example" || ns[0].rcpts[0].DSN != "5.1.1" {
		t.Fatalf("notices %+v, want one failure notice for a@nowhere.example", ns)
	}
	lines := h.logLines("postfix/error[")
	if len(lines) != 3 || !strings.Contains(lines[0], "relay=none") ||
		!strings.Contains(lines[0], "dsn=5.1.1, status=bounced (mailbox unavailable)") {
		t.Fatalf("error(8) lines %q", lines)
	}
	log := h.logBuf.String()
	if i, j := strings.Index(log, "sender non-delivery notification: B00000000001"), strings.Index(log, withSender+": removed"); i < 0 || i > j {
		t.Fatalf("bounce line missing or after removal:\n%s", log)
	}
}

func TestSuccessNoticeAndDiscard(t *testing.T) {
	h := newHarness(t)
	h.router.routes["void.example"] = Route{Transport: "discard", Nexthop: ""}
	id := h.enqueue("s@example.org", 0, "a@example.com NOTIFY=SUCCESS,FAILURE", "b@void.example")
	h.start()
	h.eventually("removed", func() bool { return h.gone(id) })
	h.waitLog(id + ": removed")
	ns := h.notifier.list()
	if len(ns) != 1 || ns[0].kind != NoticeSuccess || ns[0].rcpts[0].Addr != "a@example.com" {
		t.Fatalf("notices %+v", ns)
	}
	h.waitLog("sender delivery status notification: B00000000001")
	if l := h.logLines("postfix/discard["); len(l) != 1 || !strings.Contains(l[0], "relay=none") ||
		!strings.Contains(l[0], "dsn=2.0.0, status=sent (discarded)") {
		t.Fatalf("discard lines %q", l)
	}
}

func TestExpiredMessageReturnedToSender(t *testing.T) {
	h := newHarness(t)
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{deferred(job.Recipients[0].Index)} }
	old := h.enqueue("s@example.org", 5*24*time.Hour+time.Minute, "u@example.com")
	young := h.enqueue("s@example.org", time.Hour, "v@example.com")
	h.start()
	h.eventually("expired message removed", func() bool { return h.gone(old) })
	h.eventually("young message deferred", func() bool { return h.state(young) == queue.Deferred })
	h.waitLog(old + ": removed")
	if l := h.logLines(old + ": from=<s@example.org>, status=expired, returned to sender"); len(l) != 1 || !strings.Contains(l[0], "postfix/qmgr[") {
		t.Fatalf("expiry lines %q\n%s", l, h.logBuf.String())
	}
	ns := h.notifier.list()
	if len(ns) != 1 || ns[0].id != old || ns[0].kind != NoticeFailure || ns[0].rcpts[0].Status != queue.RcptBounced ||
		!strings.Contains(ns[0].rcpts[0].Reason, "try again later") {
		t.Fatalf("notices %+v", ns)
	}
}

func TestSoftBounceKeepsMail(t *testing.T) {
	h := newHarness(t)
	h.cfg.SoftBounce = true
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{bounced(job.Recipients[0].Index)} }
	id := h.enqueue("s@example.org", 6*24*time.Hour, "u@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	m, _ := h.fsm.Get(id)
	if r := m.Recipients[0]; r.Status != queue.RcptDeferred || r.DSN != "4.1.1" {
		t.Fatalf("recipient %+v, want deferred 4.1.1", r)
	}
	h.waitLog("dsn=4.1.1, status=deferred (host mx.example.com[192.0.2.1] said: 550 5.1.1")
	if len(h.notifier.list()) != 0 || len(h.logLines("expired")) != 0 {
		t.Fatal("soft_bounce let a notice or an expiry through")
	}
}

func TestDelayWarningOnce(t *testing.T) {
	h := newHarness(t)
	h.cfg.DelayWarningTime = 4 * time.Hour
	h.smtp.script = func(job *Job, _ int) []Result { return []Result{deferred(job.Recipients[0].Index)} }
	fresh := h.enqueue("s@example.org", 0, "u@example.com")
	late := h.enqueue("s@example.org", 5*time.Hour, "v@example.com")
	h.start()
	h.eventually("both deferred", func() bool { return h.state(fresh) == queue.Deferred && h.state(late) == queue.Deferred })
	h.waitLog(late + ": sender delay notification: B00000000001")
	h.clock.Advance(4000 * time.Second)
	h.eventually("late retried", func() bool { m, _ := h.fsm.Get(late); return m.Attempts == 2 && m.State == queue.Deferred })
	if ns := h.notifier.list(); len(ns) != 1 || ns[0].id != late || ns[0].kind != NoticeDelay {
		t.Fatalf("notices %+v, want one delay notice", ns)
	}
}

func TestUnknownTransportAndRouterErrorsDefer(t *testing.T) {
	h := newHarness(t)
	h.router.routes["lost.example"] = Route{Transport: "nosuch", Nexthop: "lost.example"}
	id := h.enqueue("s@example.org", 0, "a@lost.example", "not-an-address", "ok@example.com")
	h.start()
	h.eventually("deferral", func() bool { return h.state(id) == queue.Deferred })
	m, _ := h.fsm.Get(id)
	if m.Recipients[0].Status != queue.RcptDeferred || m.Recipients[1].Status != queue.RcptDeferred || m.Recipients[2].Status != queue.RcptSent {
		t.Fatalf("recipients %+v", m.Recipients)
	}
	h.waitLog("to=<a@lost.example>, relay=none")
	if len(h.logLines("status=deferred (mail transport unavailable)")) != 1 {
		t.Fatalf("log:\n%s", h.logBuf.String())
	}
}

func TestCommitFailureIsNotLoggedAsFinal(t *testing.T) {
	h := newHarness(t)
	var failOnce = true
	h.applier.fail = func(c *queue.Command) error {
		if c.Type == queue.CmdResult && failOnce {
			failOnce = false
			return errors.New("not the leader")
		}
		return nil
	}
	id := h.enqueue("s@example.org", 0, "u@example.com")
	h.start()
	h.waitLog("cannot record delivery results: not the leader")
	time.Sleep(20 * time.Millisecond)
	if len(h.logLines("status=sent")) != 0 || h.state(id) != queue.Active {
		t.Fatalf("uncommitted result logged or message left Active: state %s\n%s", h.state(id), h.logBuf.String())
	}
	// The entry is retried after minimal_backoff_time (at-least-once).
	h.clock.Advance(300 * time.Second)
	h.eventually("redelivered", func() bool { return h.gone(id) })
	if c := h.smtp.calls(); c != 2 {
		t.Fatalf("%d deliveries, want 2", c)
	}
}

func TestActiveLimit(t *testing.T) {
	h := newHarness(t)
	h.cfg.ActiveLimit = 2
	gate := make(chan struct{})
	h.smtp.script = func(job *Job, _ int) []Result {
		<-gate
		return []Result{sent(job.Recipients[0].Index)}
	}
	for i := 0; i < 6; i++ {
		h.enqueue("s@example.org", 0, "u@d"+string(rune('a'+i))+".example")
	}
	h.start()
	h.eventually("two deliveries", func() bool { return h.smtp.calls() == 2 })
	time.Sleep(20 * time.Millisecond)
	active := h.fsm.List(func(m *queue.Message) bool { return m.State == queue.Active })
	if len(active) != 2 || h.smtp.calls() != 2 {
		t.Fatalf("%d active, %d deliveries, want 2 with qmgr_message_active_limit=2", len(active), h.smtp.calls())
	}
	close(gate)
	h.eventually("all delivered", func() bool { return h.fsm.Len() == 0 })
}

func TestStopWaitsForDeliveries(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.smtp.script = func(job *Job, _ int) []Result {
		<-release
		return []Result{sent(job.Recipients[0].Index)}
	}
	id := h.enqueue("s@example.org", 0, "u@example.com")
	h.start()
	h.eventually("delivery running", func() bool { return h.smtp.calls() == 1 })
	done := make(chan error, 1)
	go func() { done <- h.sched.Stop(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !h.gone(id) {
		t.Fatalf("the running delivery's result was not committed before Stop returned: %s", h.state(id))
	}
}

// With one scheduler for the cluster (on the leader), a new leader delivers
// what another node had in flight when it failed.
func TestAdoptActiveTakesOverOtherNodesDeliveries(t *testing.T) {
	h := newHarness(t)
	h.cfg.AdoptActive = true
	other := h.enqueue("s@example.org", 0, "v@example.com")
	if _, err := h.applier.Apply(context.Background(), &queue.Command{Type: queue.CmdActivate, IDs: []string{other}, Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.eventually("the other node's message delivered", func() bool { return h.gone(other) })
	if c := h.smtp.calls(); c != 1 {
		t.Fatalf("%d deliveries, want 1", c)
	}
}

// The status board counts the recipients of running deliveries.
func TestDestinationsCountRecipientsInFlight(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.smtp.script = func(job *Job, _ int) []Result {
		<-release
		var out []Result
		for _, r := range job.Recipients {
			out = append(out, sent(r.Index))
		}
		return out
	}
	id := h.enqueue("s@example.org", 0, "a@example.com", "b@example.com", "c@example.com")
	h.start()
	h.eventually("three recipients in flight", func() bool {
		ds := h.sched.Destinations()
		return len(ds) == 1 && ds[0].Active == 1 && ds[0].Recipients == 3
	})
	close(release)
	h.eventually("delivered", func() bool { return h.gone(id) })
}
