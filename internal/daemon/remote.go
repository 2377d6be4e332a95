package daemon

// Delivery spread across cluster nodes.
//
// The scheduler runs on the leader only, so its destination actors count
// every job in flight and each concurrency, recipient and rate limit stays
// cluster-wide. What spreads is the execution: each delivery agent is
// wrapped in a spreadTransport that picks a node for every job (round-robin
// over the live voters the job's transport may run on, avoiding the node
// whose attempt was deferred last) and runs the job there over the cluster
// link (cluster.SendDelivery), or locally when the pick is the leader.
//
// The node that runs a job writes its delivery log lines, as Postfix's
// delivery agent does on its host: the leader's scheduler logs through
// spreader.log, whose tap routes the status lines of a remote job to that
// node as the job's epilogue once the results are committed, and every
// other line to this node's mail log.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
)

const (
	// nodeDownFor is how long a node that could not take a job is skipped.
	nodeDownFor = 3 * time.Second
	// membersTTL is how long the leader reuses the Raft configuration.
	membersTTL = time.Second
	// epilogueWait bounds the wait for a remote job's log lines: the
	// scheduler commits the results first. The cluster side waits longer.
	epilogueWait = 45 * time.Second
	// maxRemembered bounds the queue IDs remembered for other-node-on-retry.
	maxRemembered = 100000

	// Bounds of a job request and its answers: external input.
	maxJobRecipients = 100000
	maxAddrLen       = 2048
	maxTextLen       = 8192
)

// deliveryPolicy is the parsed yubin_delivery_* configuration.
type deliveryPolicy struct {
	leaderOnly  bool                // yubin_delivery_nodes = leader
	restrict    map[string][]string // yubin_transport_nodes
	preferOther bool                // yubin_delivery_preference = other-node-on-retry
}

func loadDeliveryPolicy(cfg *config.Config) (deliveryPolicy, error) {
	restrict, err := config.ParseTransportNodes(cfg.Get("yubin_transport_nodes"))
	if err != nil {
		return deliveryPolicy{}, fmt.Errorf("yubin_transport_nodes: %w", err)
	}
	return deliveryPolicy{
		leaderOnly:  cfg.Get("yubin_delivery_nodes") == "leader",
		restrict:    restrict,
		preferOther: cfg.Get("yubin_delivery_preference") != "none",
	}, nil
}

// nodePicker chooses the node for each job. It is plain state under a
// mutex, with the clock injected, so the choice rules are unit-testable.
type nodePicker struct {
	self   string
	policy deliveryPolicy
	now    func() time.Time

	mu   sync.Mutex
	next uint64
	last map[string]string    // queue ID → node whose attempt was deferred
	down map[string]time.Time // node → skipped until
}

func newNodePicker(self string, p deliveryPolicy) *nodePicker {
	return &nodePicker{self: self, policy: p, now: time.Now, last: map[string]string{}, down: map[string]time.Time{}}
}

var (
	// errNoDeliveryNode: no node may run the job now.
	errNoDeliveryNode = errors.New("no delivery node available")
	// errBadResults: a node answered with results that do not fit the job.
	errBadResults = errors.New("invalid delivery results")
)

// pick returns the node for a job of transport for message queueID among
// the voters in members (sorted, this node included), leaving out skip.
func (p *nodePicker) pick(transport, queueID string, members []string, skip map[string]bool) (string, error) {
	allowed := p.policy.restrict[transport]
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var cands []string
	for _, m := range members {
		switch {
		case skip[m]:
		case p.policy.leaderOnly && m != p.self:
		case allowed != nil && !contains(allowed, m):
		case m != p.self && now.Before(p.down[m]):
		default:
			cands = append(cands, m)
		}
	}
	if last, ok := p.last[queueID]; ok && p.policy.preferOther && len(cands) > 1 {
		if i := index(cands, last); i >= 0 {
			cands = append(cands[:i:i], cands[i+1:]...)
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%w for transport %s", errNoDeliveryNode, transport)
	}
	n := cands[p.next%uint64(len(cands))]
	p.next++
	return n, nil
}

// failed takes node out of the rotation for a while: it could not take a job.
func (p *nodePicker) failed(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[node] = p.now().Add(nodeDownFor)
}

// attempted remembers which node made a message's deferred attempt, and
// forgets it once an attempt deferred nothing.
func (p *nodePicker) attempted(queueID, node string, deferred bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !deferred {
		delete(p.last, queueID)
		return
	}
	if len(p.last) >= maxRemembered {
		clear(p.last) // expired and deleted messages never report back
	}
	p.last[queueID] = node
}

func contains(list []string, s string) bool { return index(list, s) >= 0 }

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// member is a voter the leader may hand jobs to.
type member struct{ name, addr string }

// spreader is the per-node state of delivery spread: the local agents, the
// node choice, and the log lines waiting to go to the node that ran a job.
type spreader struct {
	n      *Node
	local  map[string]actors.Transport // by master.cf service name
	picker *nodePicker
	// log is the scheduler's logger; its tap routes each line (route).
	log *maillog.Logger

	membersMu sync.Mutex
	members   []member
	membersAt time.Time

	pendingMu sync.Mutex
	pending   map[logKey]*pendingLog
}

func newSpreader(n *Node, local map[string]actors.Transport, p deliveryPolicy) *spreader {
	sp := &spreader{n: n, local: local, picker: newNodePicker(n.name, p), pending: map[logKey]*pendingLog{}}
	sp.log = maillog.Discard()
	sp.log.SetTap(sp.route)
	return sp
}

// voters returns the cluster's voters, sorted by name, this node included.
func (sp *spreader) voters() []member {
	sp.membersMu.Lock()
	defer sp.membersMu.Unlock()
	if sp.members != nil && time.Since(sp.membersAt) < membersTTL {
		return sp.members
	}
	self := []member{{name: sp.n.name}}
	if sp.n.raft == nil {
		return self
	}
	var out []member
	for _, m := range sp.n.raft.Status().Members {
		if m.Voter {
			out = append(out, member{name: m.Name, addr: m.Addr})
		}
	}
	if index(names(out), sp.n.name) < 0 {
		out = append(out, self...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	sp.members, sp.membersAt = out, time.Now()
	return out
}

func names(ms []member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.name
	}
	return out
}

// spreadTransport is a delivery agent that runs each job on a node the
// spreader picks.
type spreadTransport struct {
	sp    *spreader
	local actors.Transport
}

// Deliver implements actors.Transport. A node that cannot take the job
// (not reachable, not following this leader, lagging) is skipped and the
// next one tried. When the connection is lost after the job was sent, the
// node may have delivered: the job waits out the node's lease, so its
// session is surely closed, and then runs once more on another node (at
// least once). Only when no node is left are the recipients deferred.
// The job keeps its destination slot all along, so limits hold.
func (t *spreadTransport) Deliver(ctx context.Context, job *actors.Job) []actors.Result {
	sp := t.sp
	voters := sp.voters()
	skip := map[string]bool{}
	var lost []actors.Result // the deferral if no other node takes the job
	for range len(voters) + 1 {
		if ctx.Err() != nil {
			break
		}
		node, err := sp.picker.pick(job.Transport, job.QueueID, names(voters), skip)
		if err != nil {
			if lost != nil {
				return lost
			}
			return deferAll(job, "4.3.0", err.Error())
		}
		if node == sp.n.name {
			res := t.local.Deliver(ctx, job)
			sp.picker.attempted(job.QueueID, node, anyDeferred(res))
			return res
		}
		addr := voters[index(names(voters), node)].addr
		res, err := sp.deliverRemote(ctx, addr, job)
		switch {
		case err == nil:
			sp.picker.attempted(job.QueueID, node, anyDeferred(res))
			return res
		case errors.Is(err, cluster.ErrJobNotRun):
			sp.picker.failed(node)
			skip[node] = true
		case errors.Is(err, errBadResults):
			sp.picker.attempted(job.QueueID, node, true)
			sp.n.log.Printf("qmgr", "warning: %s: delivery node %s: %v", job.QueueID, node, err)
			return deferVia(job, "4.3.0", "invalid results from delivery node "+node, nodeRelay(node, addr))
		default:
			sp.picker.failed(node)
			skip[node] = true
			lost = deferVia(job, "4.4.2", "lost connection with delivery node "+node, nodeRelay(node, addr))
			sp.n.log.Printf("qmgr", "warning: %s: delivery node %s: %v", job.QueueID, node, err)
			if !sleepCtx(ctx, sp.n.raft.DeliveryLease()) {
				return lost
			}
		}
	}
	if lost != nil {
		return lost
	}
	if ctx.Err() != nil {
		return deferAll(job, "4.3.0", "delivery cancelled: the scheduler stopped")
	}
	return deferAll(job, "4.3.0", fmt.Sprintf("%v for transport %s", errNoDeliveryNode, job.Transport))
}

// sleepCtx waits d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deliverRemote runs job on the node at addr. The results are checked
// against the job; lines the scheduler logs for them are routed to that
// node (see route).
func (sp *spreader) deliverRemote(ctx context.Context, addr string, job *actors.Job) ([]actors.Result, error) {
	req, err := encodeJob(job)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cluster.ErrJobNotRun, err)
	}
	call, err := sp.n.raft.SendDelivery(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	res, err := decodeResults(call.Result, job)
	if err != nil {
		call.Close()
		return nil, fmt.Errorf("%w: %w", errBadResults, err)
	}
	sp.forwardLog(ctx, call, job)
	return res, nil
}

func anyDeferred(res []actors.Result) bool {
	for _, r := range res {
		if r.Status == queue.RcptDeferred {
			return true
		}
	}
	return false
}

// deferAll defers every recipient of job without reaching a server.
func deferAll(job *actors.Job, dsn, reply string) []actors.Result {
	return deferVia(job, dsn, reply, "none")
}

// deferVia defers every recipient of job with the given relay.
func deferVia(job *actors.Job, dsn, reply, relay string) []actors.Result {
	out := make([]actors.Result, len(job.Recipients))
	for i, r := range job.Recipients {
		out[i] = actors.Result{Index: r.Index, Status: queue.RcptDeferred, DSN: dsn, Reply: reply, Relay: relay}
	}
	return out
}

// nodeRelay names a delivery node the way relay= names a peer,
// NAME[ADDR]:PORT. A job lost with its node is not a failure of the
// destination: with relay=none the scheduler would count it as one and
// might suspend the destination, though its server was never in question.
func nodeRelay(node, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return node
	}
	return node + "[" + host + "]:" + port
}

// logKey names the delivery log line of one recipient of a message.
type logKey struct{ queueID, to string }

// pendingLog collects the log lines of one remote job.
type pendingLog struct {
	mu    sync.Mutex
	lines []logLine
	want  int
	full  chan struct{}
}

func (p *pendingLog) add(l logLine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, l)
	if len(p.lines) == p.want {
		close(p.full)
	}
}

// forwardLog waits, in the background, for the scheduler to log the job's
// results, and sends those lines to the node that ran it. Lines that
// cannot be sent are logged here: none is lost on the way.
func (sp *spreader) forwardLog(ctx context.Context, call *cluster.DeliveryCall, job *actors.Job) {
	p := &pendingLog{full: make(chan struct{})}
	var keys []logKey
	sp.pendingMu.Lock()
	for _, r := range job.Recipients {
		k := logKey{job.QueueID, r.Addr}
		if _, taken := sp.pending[k]; taken {
			continue // the same address twice: its other job owns the key
		}
		sp.pending[k] = p
		keys = append(keys, k)
	}
	p.want = len(keys)
	sp.pendingMu.Unlock()
	if p.want == 0 {
		call.Close()
		return
	}
	go func() {
		t := time.NewTimer(epilogueWait)
		defer t.Stop()
		select {
		case <-p.full:
		case <-t.C:
		case <-ctx.Done():
		}
		sp.pendingMu.Lock()
		for _, k := range keys {
			if sp.pending[k] == p {
				delete(sp.pending, k)
			}
		}
		sp.pendingMu.Unlock()
		p.mu.Lock()
		lines := p.lines
		p.mu.Unlock()
		b, err := json.Marshal(lines)
		if err == nil {
			err = call.Finish(b)
		} else {
			call.Close()
		}
		if err != nil {
			for _, l := range lines {
				sp.n.log.Printf(l.Service, "%s", l.Msg)
			}
		}
	}()
}

// route is the tap of the scheduler's logger: a remote job's delivery line
// goes to its pending epilogue, everything else to this node's mail log.
func (sp *spreader) route(service, msg string) {
	if id, rest, ok := strings.Cut(msg, ": to=<"); ok {
		if to, _, ok := strings.Cut(rest, ">"); ok {
			k := logKey{id, to}
			sp.pendingMu.Lock()
			p := sp.pending[k]
			delete(sp.pending, k)
			sp.pendingMu.Unlock()
			if p != nil {
				p.add(logLine{Service: service, Msg: msg})
				return
			}
		}
	}
	sp.n.log.Printf(service, "%s", msg)
}

// deliveryServer runs the jobs the leader sends (cluster.DeliveryHandler).
type deliveryServer struct {
	n     *Node
	local map[string]actors.Transport
}

// Deliver validates a job, runs it with this node's agent for its
// transport, reading the body from this node's replica of the queue, and
// returns the encoded results.
func (s deliveryServer) Deliver(ctx context.Context, b []byte) ([]byte, error) {
	w, err := decodeJob(b)
	if err != nil {
		return nil, err
	}
	t := s.local[w.Transport]
	if t == nil {
		return nil, fmt.Errorf("delivery job: transport %q is not a delivery agent in master.cf of %s", w.Transport, s.n.name)
	}
	job := w.job()
	id := w.QueueID
	job.Body = func() (io.ReadCloser, error) { return s.n.fsm.Body(id) }
	res := t.Deliver(ctx, job)
	if ctx.Err() != nil && anyDeferred(res) {
		// Cut short (shutdown, lost lease): these deferrals say nothing
		// about the destination; the leader runs the job elsewhere.
		return nil, fmt.Errorf("%w: %v", cluster.ErrJobAborted, context.Cause(ctx))
	}
	return encodeResults(res)
}

// Epilogue writes the leader's log lines for a job this node ran.
func (s deliveryServer) Epilogue(b []byte) {
	lines, err := decodeLogLines(b)
	if err != nil {
		s.n.log.Printf("qmgr", "warning: delivery log lines from the leader: %v", err)
		return
	}
	for _, l := range lines {
		s.n.log.Printf(l.Service, "%s", l.Msg)
	}
}

// Unrecorded commits the plain successes of a job whose leader went away
// before it recorded the results, so the next leader does not deliver them
// again (see actors.UnrecordedResults), and then logs their delivery lines
// here, where the delivery ran.
func (s deliveryServer) Unrecorded(jb, rb []byte) {
	w, err := decodeJob(jb)
	if err != nil {
		return
	}
	job := w.job()
	res, err := decodeResults(rb, job)
	if err != nil {
		s.n.log.Printf("qmgr", "warning: %s: results of a job whose leader went away: %v", job.QueueID, err)
		return
	}
	cmd, lines := actors.UnrecordedResults(job, res, time.Now())
	if cmd == nil {
		return
	}
	// The old leader is usually dead, and this node may not have noticed
	// yet: a first attempt can go to it and end with an unknown outcome.
	// Recording a final result twice is harmless, so unlike a submission
	// it is simply tried again until a new leader takes it.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var r queue.ApplyResult
	for {
		r, err = s.n.apply(ctx, cmd)
		if err == nil || !errors.Is(err, cluster.ErrNoQuorum) || !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
	}
	if err != nil {
		s.n.log.Printf("qmgr", "warning: %s: delivered, but the result is not recorded (the leader went away): %v; it may be delivered again", job.QueueID, err)
		return
	}
	for _, l := range lines {
		s.n.log.Printf(job.Transport, "%s", l)
	}
	if r.Removed {
		s.n.log.Printf("qmgr", "%s: removed", job.QueueID)
	}
}

// Wire format: JSON, one job per 'D' connection (cluster.SendDelivery).
// The body is not sent; the executing node reads its own replica.

type wireJob struct {
	QueueID    string          `json:"queue_id"`
	Transport  string          `json:"transport"`
	Nexthop    string          `json:"nexthop"`
	Sender     string          `json:"sender"`
	Recipients []wireRecipient `json:"rcpts"`
	Message    queue.Message   `json:"message"`
}

type wireRecipient struct {
	Index    int    `json:"index"`
	Addr     string `json:"addr"`
	OrigAddr string `json:"orig,omitempty"`
	Notify   string `json:"notify,omitempty"`
	ORCPT    string `json:"orcpt,omitempty"`
	Target   string `json:"target,omitempty"`
}

type wireResult struct {
	Index          int              `json:"index"`
	Status         queue.RcptStatus `json:"status"`
	DSN            string           `json:"dsn,omitempty"`
	Reply          string           `json:"reply,omitempty"`
	Relay          string           `json:"relay,omitempty"`
	ConnSetupNS    int64            `json:"conn_setup_ns,omitempty"`
	TransmissionNS int64            `json:"transmission_ns,omitempty"`
	ConnUse        int              `json:"conn_use,omitempty"`
}

// logLine is one mail log line: the program name and the message.
type logLine struct {
	Service string `json:"service"`
	Msg     string `json:"msg"`
}

func encodeJob(job *actors.Job) ([]byte, error) {
	w := wireJob{QueueID: job.QueueID, Transport: job.Transport, Nexthop: job.Nexthop, Sender: job.Sender, Message: job.Message}
	for _, r := range job.Recipients {
		w.Recipients = append(w.Recipients, wireRecipient{Index: r.Index, Addr: r.Addr, OrigAddr: r.OrigAddr, Notify: r.Notify, ORCPT: r.ORCPT, Target: r.Target})
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("encode delivery job: %w", err)
	}
	return b, nil
}

// decodeJob parses and validates a job request.
func decodeJob(b []byte) (*wireJob, error) {
	var w wireJob
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("delivery job: %w", err)
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	return &w, nil
}

// validate checks every field of a job: it comes from another node.
func (w *wireJob) validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("delivery job %s: %s", w.QueueID, fmt.Sprintf(format, args...))
	}
	if err := queue.ValidateID(w.QueueID); err != nil {
		return fmt.Errorf("delivery job: queue ID: %w", err)
	}
	if err := checkServiceName(w.Transport); err != nil {
		return fail("transport: %v", err)
	}
	if err := checkText(w.Nexthop, maxAddrLen); err != nil {
		return fail("nexthop: %v", err)
	}
	if err := checkText(w.Sender, maxAddrLen); err != nil {
		return fail("sender: %v", err)
	}
	m := &w.Message
	switch {
	case m.ID != w.QueueID:
		return fail("message ID %q differs", m.ID)
	case m.Sender != w.Sender:
		return fail("message sender differs from the job's")
	case len(m.Recipients) == 0 || len(m.Recipients) > maxJobRecipients:
		return fail("message has %d recipients", len(m.Recipients))
	case m.Size < 0:
		return fail("negative message size")
	case len(w.Recipients) == 0:
		return fail("no recipients")
	case len(w.Recipients) > len(m.Recipients):
		return fail("%d recipients for a message of %d", len(w.Recipients), len(m.Recipients))
	}
	seen := make(map[int]bool, len(w.Recipients))
	for _, r := range w.Recipients {
		if r.Index < 0 || r.Index >= len(m.Recipients) {
			return fail("recipient index %d out of range", r.Index)
		}
		if seen[r.Index] {
			return fail("recipient index %d twice", r.Index)
		}
		seen[r.Index] = true
		if r.Addr == "" {
			return fail("recipient %d: empty address", r.Index)
		}
		for _, f := range []struct{ name, v string }{{"address", r.Addr}, {"original address", r.OrigAddr}, {"NOTIFY", r.Notify}, {"ORCPT", r.ORCPT}, {"target", r.Target}} {
			if err := checkText(f.v, maxAddrLen); err != nil {
				return fail("recipient %d %s: %v", r.Index, f.name, err)
			}
		}
	}
	return nil
}

func (w *wireJob) job() *actors.Job {
	j := &actors.Job{QueueID: w.QueueID, Transport: w.Transport, Nexthop: w.Nexthop, Sender: w.Sender, Message: w.Message}
	for _, r := range w.Recipients {
		j.Recipients = append(j.Recipients, actors.JobRecipient{Index: r.Index, Addr: r.Addr, OrigAddr: r.OrigAddr, Notify: r.Notify, ORCPT: r.ORCPT, Target: r.Target})
	}
	return j
}

func encodeResults(res []actors.Result) ([]byte, error) {
	out := make([]wireResult, len(res))
	for i, r := range res {
		out[i] = wireResult{Index: r.Index, Status: r.Status, DSN: r.DSN, Reply: r.Reply, Relay: r.Relay,
			ConnSetupNS: int64(r.ConnSetup), TransmissionNS: int64(r.Transmission), ConnUse: r.ConnUse}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode delivery results: %w", err)
	}
	return b, nil
}

// decodeResults parses a node's results for job: at most one per job
// recipient, each with a known status. Anything else is an error; the
// caller then defers the job.
func decodeResults(b []byte, job *actors.Job) ([]actors.Result, error) {
	var in []wireResult
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("delivery results: %w", err)
	}
	if len(in) > len(job.Recipients) {
		return nil, fmt.Errorf("delivery results: %d results for %d recipients", len(in), len(job.Recipients))
	}
	want := make(map[int]bool, len(job.Recipients))
	for _, r := range job.Recipients {
		want[r.Index] = true
	}
	out := make([]actors.Result, 0, len(in))
	for _, r := range in {
		if !want[r.Index] {
			return nil, fmt.Errorf("delivery results: recipient index %d not in the job, or twice", r.Index)
		}
		want[r.Index] = false
		switch r.Status {
		case queue.RcptSent, queue.RcptBounced, queue.RcptDeferred:
		default:
			return nil, fmt.Errorf("delivery results: recipient %d: invalid status %q", r.Index, r.Status)
		}
		if r.ConnSetupNS < 0 || r.TransmissionNS < 0 || r.ConnUse < 0 {
			return nil, fmt.Errorf("delivery results: recipient %d: negative timing", r.Index)
		}
		for _, s := range []string{r.DSN, r.Reply, r.Relay} {
			if err := checkText(s, maxTextLen); err != nil {
				return nil, fmt.Errorf("delivery results: recipient %d: %w", r.Index, err)
			}
		}
		out = append(out, actors.Result{Index: r.Index, Status: r.Status, DSN: r.DSN, Reply: r.Reply, Relay: r.Relay,
			ConnSetup: time.Duration(r.ConnSetupNS), Transmission: time.Duration(r.TransmissionNS), ConnUse: r.ConnUse})
	}
	return out, nil
}

// decodeLogLines parses an epilogue: log lines of known shape only.
func decodeLogLines(b []byte) ([]logLine, error) {
	var lines []logLine
	if err := json.Unmarshal(b, &lines); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(lines) > maxJobRecipients {
		return nil, fmt.Errorf("%d lines", len(lines))
	}
	for _, l := range lines {
		if err := checkServiceName(l.Service); err != nil {
			return nil, fmt.Errorf("program name: %w", err)
		}
		if l.Msg == "" {
			return nil, errors.New("empty line")
		}
		if err := checkText(l.Msg, maxTextLen); err != nil {
			return nil, err
		}
	}
	return lines, nil
}

// checkServiceName accepts a master.cf service name or a program name for
// the log: 1-100 printable ASCII characters without blanks.
func checkServiceName(s string) error {
	if s == "" || len(s) > 100 {
		return fmt.Errorf("name of %d bytes", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("name %q: only printable ASCII without blanks", s)
		}
	}
	return nil
}

// checkText accepts valid UTF-8 of at most max bytes without control
// characters (a tab is allowed): nothing that could split a log line or an
// SMTP command.
func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes, more than %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, c := range s {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("control character %U", c)
		}
	}
	return nil
}
