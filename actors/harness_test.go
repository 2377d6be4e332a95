package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
)

// raftApplier applies commands to a real FSM through Encode/Decode and
// FSM.Apply, one at a time, so the FSM's event hook fires as under Raft.
type raftApplier struct {
	fsm  *queue.FSM
	mu   sync.Mutex
	idx  uint64
	cmds []queue.Command
	fail func(*queue.Command) error // injected commit failures
	// slow, when set, is how long a command takes to commit (outside the
	// lock, as concurrent Raft commits overlap).
	slow func(*queue.Command) time.Duration
}

func (a *raftApplier) Apply(ctx context.Context, c *queue.Command) (queue.ApplyResult, error) {
	if err := ctx.Err(); err != nil {
		return queue.ApplyResult{}, err
	}
	if a.slow != nil {
		time.Sleep(a.slow(c))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		if err := a.fail(c); err != nil {
			return queue.ApplyResult{}, err
		}
	}
	b, err := c.Encode()
	if err != nil {
		return queue.ApplyResult{}, err
	}
	a.idx++
	res, ok := a.fsm.Apply(&raft.Log{Index: a.idx, Type: raft.LogCommand, Data: b}).(queue.ApplyResult)
	if !ok {
		return queue.ApplyResult{}, errors.New("FSM.Apply returned no ApplyResult")
	}
	a.cmds = append(a.cmds, *c)
	return res, nil
}

// commands returns the committed commands of one type.
func (a *raftApplier) commands(typ queue.CommandType) []queue.Command {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []queue.Command
	for _, c := range a.cmds {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// fakeRouter sends a domain to the transport named in routes, else smtp
// with the domain as nexthop.
type fakeRouter struct {
	routes map[string]Route // by domain
}

func (r *fakeRouter) Route(rcpt queue.Recipient, _ string) (Route, error) {
	_, domain, ok := strings.Cut(rcpt.Addr, "@")
	if !ok {
		return Route{}, fmt.Errorf("bad address %q", rcpt.Addr)
	}
	if rt, ok := r.routes[domain]; ok {
		return rt, nil
	}
	return Route{Transport: "smtp", Nexthop: domain}, nil
}

// fakeTransport records jobs, counts concurrent deliveries per nexthop and
// over all, and answers with script (default: everything sent).
type fakeTransport struct {
	clock  Clock
	hold   time.Duration // real time each delivery takes, to expose overlap
	script func(job *Job, call int) []Result

	mu        sync.Mutex
	jobs      []*Job
	starts    []time.Time // fake-clock start of each call
	cur       map[string]int
	maxPer    map[string]int
	total     int
	maxTotal  int
	bodyBytes []string
}

func newFakeTransport(clock Clock) *fakeTransport {
	return &fakeTransport{clock: clock, cur: map[string]int{}, maxPer: map[string]int{}}
}

func (f *fakeTransport) Deliver(ctx context.Context, job *Job) []Result {
	f.mu.Lock()
	call := len(f.jobs)
	f.jobs = append(f.jobs, job)
	f.starts = append(f.starts, f.clock.Now())
	f.cur[job.Nexthop]++
	f.maxPer[job.Nexthop] = max(f.maxPer[job.Nexthop], f.cur[job.Nexthop])
	f.total++
	f.maxTotal = max(f.maxTotal, f.total)
	f.mu.Unlock()
	if body, err := job.Body(); err == nil {
		var b bytes.Buffer
		_, _ = b.ReadFrom(body)
		body.Close()
		f.mu.Lock()
		f.bodyBytes = append(f.bodyBytes, b.String())
		f.mu.Unlock()
	}
	if f.hold > 0 {
		select {
		case <-time.After(f.hold):
		case <-ctx.Done():
		}
	}
	var out []Result
	if f.script != nil {
		out = f.script(job, call)
	} else {
		for _, r := range job.Recipients {
			out = append(out, sent(r.Index))
		}
	}
	f.mu.Lock()
	f.cur[job.Nexthop]--
	f.total--
	f.mu.Unlock()
	return out
}

func (f *fakeTransport) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jobs)
}

func sent(i int) Result {
	return Result{Index: i, Status: queue.RcptSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok: queued as 4XyZ",
		Relay: "mx.example.com[192.0.2.1]:25", ConnSetup: 50 * time.Millisecond, Transmission: 60 * time.Millisecond}
}

func deferred(i int) Result {
	return Result{Index: i, Status: queue.RcptDeferred, DSN: "4.7.1", Relay: "mx.example.com[192.0.2.1]:25",
		Reply: "host mx.example.com[192.0.2.1] said: 450 4.7.1 try again later (in reply to RCPT TO command)"}
}

func refused(i int) Result {
	return Result{Index: i, Status: queue.RcptDeferred, DSN: "4.4.1", Relay: "none",
		Reply: "connect to mx.example.com[192.0.2.1]:25: Connection refused"}
}

func bounced(i int) Result {
	return Result{Index: i, Status: queue.RcptBounced, DSN: "5.1.1", Relay: "mx.example.com[192.0.2.1]:25",
		Reply: "host mx.example.com[192.0.2.1] said: 550 5.1.1 <u@example.com>: User unknown (in reply to RCPT TO command)"}
}

// fakeNotifier records notices and hands out IDs.
type fakeNotifier struct {
	mu      sync.Mutex
	notices []notice
}

type notice struct {
	id, kind string
	rcpts    []queue.Recipient
}

func (n *fakeNotifier) Bounce(_ context.Context, msg queue.Message, rcpts []queue.Recipient, kind string, _ func() (io.ReadCloser, error)) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notices = append(n.notices, notice{msg.ID, kind, rcpts})
	return fmt.Sprintf("B%011d", len(n.notices)), nil
}

func (n *fakeNotifier) list() []notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notice(nil), n.notices...)
}

// lockedBuffer collects mail log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	t         *testing.T
	fsm       *queue.FSM
	applier   *raftApplier
	clock     *FakeClock
	router    *fakeRouter
	smtp      *fakeTransport
	notifier  *fakeNotifier
	logBuf    *lockedBuffer
	cfg       Config
	limits    map[string]DestLimits
	transport map[string]Transport
	sched     *Scheduler
	seq       int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	fsm, err := queue.NewFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := NewFakeClock(t0)
	h := &harness{
		t: t, fsm: fsm, applier: &raftApplier{fsm: fsm}, clock: clock,
		router: &fakeRouter{routes: map[string]Route{}}, smtp: newFakeTransport(clock),
		notifier: &fakeNotifier{}, logBuf: &lockedBuffer{}, cfg: DefaultConfig("n1"),
		limits: map[string]DestLimits{},
	}
	h.transport = map[string]Transport{"smtp": h.smtp, "error": ErrorTransport{}, "discard": DiscardTransport{}}
	h.cfg.Notifier = h.notifier
	h.cfg.Limits = func(tr string) DestLimits {
		if l, ok := h.limits[tr]; ok {
			return l
		}
		return DefaultDestLimits()
	}
	return h
}

// start creates and starts the scheduler; Stop runs at cleanup.
func (h *harness) start() {
	h.t.Helper()
	log := maillog.New(h.logBuf, "postfix", "mx1.example.com")
	log.SetClock(h.clock.Now)
	h.sched = New(h.cfg, h.fsm, h.applier, h.router, h.transport, log, h.clock)
	h.fsm.OnEvent(h.sched.Notify)
	if err := h.sched.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.sched.Stop(ctx); err != nil {
			h.t.Errorf("Stop: %v", err)
		}
	})
}

// enqueue commits a message with the given recipients, arrived age ago.
func (h *harness) enqueue(sender string, age time.Duration, rcpts ...string) string {
	h.t.Helper()
	h.seq++
	m := &queue.Message{ID: fmt.Sprintf("AAAAAAAA%08X", h.seq), Sender: sender, Arrival: h.clock.Now().Add(-age)}
	for _, r := range rcpts {
		rc := queue.Recipient{Addr: r}
		if addr, notify, ok := strings.Cut(r, " NOTIFY="); ok {
			rc.Addr, rc.Notify = addr, notify
		}
		m.Recipients = append(m.Recipients, rc)
	}
	res, err := h.applier.Apply(context.Background(), &queue.Command{Type: queue.CmdEnqueue, Message: m,
		Body: []byte("Subject: test " + m.ID + "\r\n\r\nhello\r\n"), Now: h.clock.Now()})
	if err != nil || res.Err != nil {
		h.t.Fatalf("enqueue: %v %v", err, res.Err)
	}
	return m.ID
}

// eventually polls cond for up to 10 s of real time.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s\nmail log:\n%s", what, h.logBuf.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) gone(id string) bool {
	_, ok := h.fsm.Get(id)
	return !ok
}

func (h *harness) state(id string) queue.State {
	m, _ := h.fsm.Get(id)
	return m.State
}

// waitLog waits for a log line containing s.
func (h *harness) waitLog(s string) {
	h.t.Helper()
	h.eventually("log line "+s, func() bool { return strings.Contains(h.logBuf.String(), s) })
}

// logLines returns the log lines that contain s.
func (h *harness) logLines(s string) []string {
	var out []string
	for _, l := range strings.Split(h.logBuf.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
