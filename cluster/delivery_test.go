package cluster

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// recordingHandler is a DeliveryHandler that answers "done:JOB", or, for a
// job named "block", waits until its context ends and reports why.
type recordingHandler struct {
	mu        sync.Mutex
	jobs      []string
	epilogues []string
	// unrecorded are "job=result" of jobs whose leader never confirmed.
	unrecorded []string
	started    chan struct{} // closed when a blocking job runs
	ended      chan error    // the cause that ended a blocking job
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{started: make(chan struct{}), ended: make(chan error, 1)}
}

func (h *recordingHandler) Deliver(ctx context.Context, job []byte) ([]byte, error) {
	h.mu.Lock()
	h.jobs = append(h.jobs, string(job))
	h.mu.Unlock()
	switch string(job) {
	case "invalid":
		return nil, errors.New("job is invalid")
	case "abort":
		return nil, ErrJobAborted
	case "block":
		close(h.started)
		<-ctx.Done()
		h.ended <- context.Cause(ctx)
		return []byte("cancelled"), nil
	}
	return []byte("done:" + string(job)), nil
}

func (h *recordingHandler) Epilogue(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.epilogues = append(h.epilogues, string(data))
}

func (h *recordingHandler) Unrecorded(job, result []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unrecorded = append(h.unrecorded, string(job)+"="+string(result))
}

func (h *recordingHandler) unrecordedJobs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.unrecorded...)
}

func (h *recordingHandler) snapshot() (jobs, epilogues []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.jobs...), append([]string(nil), h.epilogues...)
}

// deliveryCluster starts three nodes, each with its own handler.
func deliveryCluster(t *testing.T) (*testCluster, map[string]*recordingHandler) {
	handlers := map[string]*recordingHandler{}
	var mu sync.Mutex
	c := newCluster(t, 3, func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		h := newRecordingHandler()
		handlers[cfg.NodeName] = h
		cfg.Deliveries = h
	})
	return c, handlers
}

func TestSendDeliveryRunsJobOnFollower(t *testing.T) {
	c, handlers := deliveryCluster(t)
	lead, f := c.leader(), c.follower()
	mustApply(t, lead, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	call, err := lead.node.SendDelivery(ctx, f.addr, []byte("job1"))
	if err != nil {
		t.Fatal(err)
	}
	if string(call.Result) != "done:job1" {
		t.Fatalf("result %q", call.Result)
	}
	// The follower had applied what the leader had when it ran the job.
	if _, ok := f.fsm.Get(testID(1)); !ok {
		t.Fatal("job ran before the follower applied the leader's index")
	}
	if err := call.Finish([]byte("log lines")); err != nil {
		t.Fatal(err)
	}
	if !poll(waitLong, func() bool { _, ep := handlers[f.name].snapshot(); return len(ep) == 1 }) {
		t.Fatal("epilogue never arrived")
	}
	if _, ep := handlers[f.name].snapshot(); ep[0] != "log lines" {
		t.Fatalf("epilogue %q", ep)
	}
	if u := handlers[f.name].unrecordedJobs(); len(u) != 0 {
		t.Fatalf("a job with its epilogue reported as unrecorded: %v", u)
	}

	// A job the handler rejects was not run: the leader may go elsewhere.
	if _, err := lead.node.SendDelivery(ctx, f.addr, []byte("invalid")); !errors.Is(err, ErrJobNotRun) || !strings.Contains(err.Error(), "job is invalid") {
		t.Fatalf("invalid job: %v", err)
	}
	// An aborted job sends no result: the outcome is unknown.
	if _, err := lead.node.SendDelivery(ctx, f.addr, []byte("abort")); err == nil || errors.Is(err, ErrJobNotRun) {
		t.Fatalf("aborted job: %v", err)
	}
	// Only the leader hands out jobs, and not to itself.
	if _, err := f.node.SendDelivery(ctx, lead.addr, []byte("job2")); !errors.Is(err, ErrJobNotRun) {
		t.Fatalf("job from a follower: %v", err)
	}
	if _, err := lead.node.SendDelivery(ctx, lead.addr, []byte("job3")); !errors.Is(err, ErrJobNotRun) {
		t.Fatalf("job to the leader itself: %v", err)
	}
	// Nothing listening: not run either.
	ln := listenLoopback(t)
	dead := ln.Addr().String()
	ln.Close()
	if _, err := lead.node.SendDelivery(ctx, dead, []byte("job4")); !errors.Is(err, ErrJobNotRun) {
		t.Fatalf("job to a dead address: %v", err)
	}
	jobs, _ := handlers[f.name].snapshot()
	if len(jobs) != 3 {
		t.Fatalf("follower ran %v", jobs)
	}
}

// Jobs to the same node share one connection, one job after the other; a
// connection its node closed (a restart) is not used for the next job.
func TestDeliveryConnectionReused(t *testing.T) {
	c, handlers := deliveryCluster(t)
	lead, f := c.leader(), c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	idle := func() []net.Conn {
		lead.node.jobConns.mu.Lock()
		defer lead.node.jobConns.mu.Unlock()
		var out []net.Conn
		for _, ic := range lead.node.jobConns.idle[f.addr] {
			out = append(out, ic.conn)
		}
		return out
	}
	run := func(job string) {
		t.Helper()
		call, err := lead.node.SendDelivery(ctx, f.addr, []byte(job))
		if err != nil {
			t.Fatalf("%s: %v", job, err)
		}
		if string(call.Result) != "done:"+job {
			t.Fatalf("%s: result %q", job, call.Result)
		}
		if err := call.Finish([]byte("log " + job)); err != nil {
			t.Fatal(err)
		}
	}
	run("first")
	first := idle()
	run("second")
	if second := idle(); len(first) != 1 || len(second) != 1 || first[0] != second[0] {
		t.Fatalf("idle connections after two jobs: %v then %v; want the same one", first, second)
	}
	if !poll(waitLong, func() bool { _, ep := handlers[f.name].snapshot(); return len(ep) == 2 }) {
		t.Fatal("epilogues of both jobs never arrived")
	}

	f.stop()
	f.start(nil)
	if !poll(waitLong, func() bool { _, id := f.node.raft.LeaderWithID(); return string(id) == lead.name }) {
		t.Fatal("restarted follower never heard from the leader")
	}
	run("after-restart")
	if after := idle(); len(after) != 1 || after[0] == first[0] {
		t.Fatalf("idle connections after the restart: %v (before %v)", after, first)
	}
}

// startBlockingJob sends the "block" job to f and returns once it runs;
// SendDelivery's error arrives on the channel when the job ends.
func startBlockingJob(t *testing.T, ctx context.Context, lead, f *testNode, h *recordingHandler) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := lead.node.SendDelivery(ctx, f.addr, []byte("block"))
		errc <- err
	}()
	select {
	case <-h.started:
	case <-time.After(waitLong):
		t.Fatal("job never started")
	}
	return errc
}

func TestDeliveryCancelledWhenLeaderHangsUp(t *testing.T) {
	c, handlers := deliveryCluster(t)
	lead, f := c.leader(), c.follower()
	ctx, cancel := context.WithCancel(context.Background())
	h := handlers[f.name]
	errc := startBlockingJob(t, ctx, lead, f, h)
	cancel()
	select {
	case cause := <-h.ended:
		if cause == nil || !strings.Contains(cause.Error(), "closed the connection") {
			t.Fatalf("job ended by %v", cause)
		}
	case <-time.After(waitLong):
		t.Fatal("job not cancelled after the leader hung up")
	}
	if err := <-errc; err == nil || errors.Is(err, ErrJobNotRun) {
		t.Fatalf("a job that ran reported %v", err)
	}
	// Its result never reached the leader: the handler hears of it.
	if !poll(waitLong, func() bool { return len(h.unrecordedJobs()) == 1 }) || h.unrecordedJobs()[0] != "block=cancelled" {
		t.Fatalf("unrecorded: %v", h.unrecordedJobs())
	}
}

// A leader that takes the result but closes without the epilogue may not
// have recorded it; one that sends the epilogue has.
func TestDeliveryWithoutEpilogueIsUnrecorded(t *testing.T) {
	c, handlers := deliveryCluster(t)
	lead, f := c.leader(), c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	h := handlers[f.name]
	call, err := lead.node.SendDelivery(ctx, f.addr, []byte("recorded"))
	if err != nil {
		t.Fatal(err)
	}
	if err := call.Finish([]byte("lines")); err != nil {
		t.Fatal(err)
	}
	call, err = lead.node.SendDelivery(ctx, f.addr, []byte("dropped"))
	if err != nil {
		t.Fatal(err)
	}
	call.Close()
	if !poll(waitLong, func() bool { return len(h.unrecordedJobs()) > 0 }) {
		t.Fatal("a result the leader never confirmed was not reported")
	}
	time.Sleep(100 * time.Millisecond)
	if got := h.unrecordedJobs(); len(got) != 1 || got[0] != "dropped=done:dropped" {
		t.Fatalf("unrecorded: %v", got)
	}
}

// A node that stops following the sender cancels its job by itself, even
// though the connection stays open: the lease.
func TestDeliveryCancelledWhenLeadershipMoves(t *testing.T) {
	c, handlers := deliveryCluster(t)
	lead, f := c.leader(), c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	h := handlers[f.name]
	errc := startBlockingJob(t, ctx, lead, f, h)
	start := time.Now()
	if err := lead.node.Raft().LeadershipTransferToServer(raft.ServerID(f.name), raft.ServerAddress(f.addr)).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	select {
	case cause := <-h.ended:
		if cause == nil || !strings.Contains(cause.Error(), "not a follower") {
			t.Fatalf("job ended by %v", cause)
		}
		t.Logf("job cancelled %v after the transfer started: %v", time.Since(start).Round(time.Millisecond), cause)
	case <-time.After(waitLong):
		t.Fatal("job kept running on the new leader")
	}
	// The result still reaches the old leader, which may still record it.
	if err := <-errc; err != nil {
		t.Fatalf("old leader: %v", err)
	}
}

func TestDeliveryRefusedWithoutHandler(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead, f := c.leader(), c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := lead.node.SendDelivery(ctx, f.addr, []byte("job"))
	if !errors.Is(err, ErrJobNotRun) || !strings.Contains(err.Error(), "takes no delivery jobs") {
		t.Fatalf("got %v", err)
	}
}

func TestDecodeDeliveryRequest(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"job", rawRequest(`{"op":"deliver","index":7,"timeout_ms":5000}`, "job"), true},
		{"no job", rawRequest(`{"op":"deliver","index":7,"timeout_ms":5000}`, ""), false},
		{"no timeout", rawRequest(`{"op":"deliver","index":7}`, "job"), false},
		{"apply op", rawRequest(`{"op":"apply","index":7,"timeout_ms":5000}`, "job"), false},
		{"status op", rawRequest(`{"op":"status","timeout_ms":5000}`, ""), false},
	} {
		req, err := decodeRequest(protoDeliver, c.in)
		if (err == nil) != c.ok {
			t.Errorf("%s: ok=%v, err=%v", c.name, c.ok, err)
		}
		if err == nil && (req.Index != 7 || !bytes.Equal(req.Data, []byte("job"))) {
			t.Errorf("%s: decoded %+v", c.name, req)
		}
	}
	// A deliver request is refused on the other protocols.
	for _, proto := range []byte{protoForward, protoMember, protoRaft} {
		if _, err := decodeRequest(proto, rawRequest(`{"op":"deliver","index":7,"timeout_ms":5000}`, "job")); err == nil {
			t.Errorf("deliver accepted on protocol %q", proto)
		}
	}
	if rep, err := decodeReply([]byte(`{"code":"refused","msg":"lags"}`)); err != nil || rep.Code != codeRefused {
		t.Errorf("refused reply: %+v %v", rep, err)
	}
}
