package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/yubin-mta/yubin/queue"
)

const (
	// leaderPoll is how often a caller looks for a (new) leader.
	leaderPoll = 10 * time.Millisecond
	// readRequestTimeout bounds reading a request once a connection is up.
	readRequestTimeout = 30 * time.Second
	// writeReplyTimeout bounds writing the reply.
	writeReplyTimeout = 10 * time.Second
)

// toLeader runs req on the current leader: locally when this node leads,
// else over the cluster link. When the leader answers that it no longer
// leads, or cannot be reached at all, nothing was done and the request is
// tried once more on the new leader. A failure after the request was sent
// means the outcome is unknown: ErrNoQuorum, never a retry that could apply
// the command twice.
func (n *Node) toLeader(ctx context.Context, proto byte, req *request) (*reply, error) {
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	var avoid, hint string
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		addr, self, err := n.findLeader(ctx, avoid, hint)
		if err != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("%w (before: %v)", err, lastErr)
			}
			return nil, err
		}
		rep, sent, err := n.call(ctx, addr, self, proto, req)
		switch {
		case err != nil && sent:
			return nil, fmt.Errorf("%w: leader %s: outcome unknown: %v", ErrNoQuorum, addr, err)
		case err != nil:
			lastErr = err
			hint = ""
		case rep.Code == codeNotLeader:
			lastErr = fmt.Errorf("%s no longer leads the cluster", addr)
			hint = rep.LeaderAddr
		default:
			return rep, rep.err()
		}
		avoid = addr
	}
	return nil, fmt.Errorf("%w: %v", ErrNoQuorum, lastErr)
}

// err turns a reply code into the caller's error.
func (r *reply) err() error {
	switch r.Code {
	case codeOK:
		return nil
	case codeNoQuorum, codeNotLeader:
		return fmt.Errorf("%w: %s", ErrNoQuorum, r.Message)
	default:
		return fmt.Errorf("cluster: refused: %s", r.Message)
	}
}

// findLeader waits for a known leader. A hint from a node that just refused
// is taken as is; otherwise the address in avoid (the leader that just
// failed) is skipped until an election has had time to happen.
func (n *Node) findLeader(ctx context.Context, avoid, hint string) (addr string, self bool, err error) {
	if hint != "" && hint != avoid && hint != n.addr {
		return hint, false, nil
	}
	heartbeat := n.raft.ReloadableConfig().HeartbeatTimeout
	avoidUntil := time.Now().Add(2 * heartbeat)
	// An election takes a heartbeat timeout or two. A node that finds no
	// leader for ten is cut off from the majority; its caller, often an
	// SMTP client waiting for the reply to DATA, is better served by a
	// prompt "try again later" than by waiting out its whole deadline.
	giveUp := time.Now().Add(10 * heartbeat)
	t := time.NewTicker(leaderPoll)
	defer t.Stop()
	for {
		la, id := n.raft.LeaderWithID()
		if la != "" && (string(la) != avoid || time.Now().After(avoidUntil)) {
			return string(la), string(id) == n.cfg.NodeName, nil
		}
		if time.Now().After(giveUp) {
			return "", false, fmt.Errorf("%w: no leader for %v", ErrNoQuorum, 10*heartbeat)
		}
		select {
		case <-ctx.Done():
			return "", false, fmt.Errorf("%w: no leader reachable: %v", ErrNoQuorum, ctx.Err())
		case <-n.ctx.Done():
			return "", false, fmt.Errorf("%w: node is shutting down", ErrNoQuorum)
		case <-t.C:
		}
	}
}

// call runs req on the node at addr (this one when self) and returns its
// reply. sent reports whether the request may have reached that node.
func (n *Node) call(ctx context.Context, addr string, self bool, proto byte, req *request) (rep *reply, sent bool, err error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, false, errors.New("cluster: call without deadline")
	}
	left := time.Until(dl)
	if left <= 0 {
		return nil, false, fmt.Errorf("%w: %v", ErrNoQuorum, context.DeadlineExceeded)
	}
	if self {
		r := n.handle(ctx, req)
		return &r, true, nil
	}
	if n.dialer == nil {
		return nil, false, fmt.Errorf("cluster: %s has no cluster listener to reach %s", n.cfg.NodeName, addr)
	}
	// Leave the leader a tenth of the time to get the reply back.
	req.TimeoutMS = max(1, (left - left/10).Milliseconds())
	payload, err := encodeRequest(req)
	if err != nil {
		return nil, false, err
	}
	if proto == protoForward {
		return n.fwd.roundTrip(ctx, addr, payload)
	}
	conn, err := n.dialer.dial(ctx, addr, proto)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	conn.SetDeadline(dl)
	if err := writeFrame(conn, payload); err != nil {
		return nil, true, err
	}
	b, err := readFrame(conn)
	if err != nil {
		return nil, true, err
	}
	rep, err = decodeReply(b)
	return rep, true, err
}

// serveConn serves a connection of the forward, membership or delivery
// protocol.
func (n *Node) serveConn(ctx context.Context, proto byte, conn net.Conn) {
	switch proto {
	case protoDeliver:
		n.serveDelivery(ctx, conn)
		return
	case protoForward:
		n.serveStream(ctx, conn)
		return
	}
	conn.SetReadDeadline(time.Now().Add(readRequestTimeout))
	b, err := readFrame(conn)
	if err != nil {
		n.log.Debug("cluster request not read", "remote", conn.RemoteAddr().String(), "error", err)
		return
	}
	rep := n.serveRequest(ctx, proto, b)
	out, err := encodeReply(&rep)
	if err != nil {
		n.log.Error("cluster reply not encoded", "error", err)
		return
	}
	conn.SetWriteDeadline(time.Now().Add(writeReplyTimeout))
	if err := writeFrame(conn, out); err != nil {
		n.log.Debug("cluster reply not sent", "remote", conn.RemoteAddr().String(), "error", err)
	}
}

// serveRequest decodes and runs one request from another node.
func (n *Node) serveRequest(ctx context.Context, proto byte, b []byte) reply {
	req, err := decodeRequest(proto, b)
	if err != nil {
		return reply{Code: codeRejected, Message: err.Error()}
	}
	rctx, cancel := context.WithTimeout(ctx, req.timeout())
	defer cancel()
	select {
	case <-n.started:
		return n.handle(rctx, req)
	case <-rctx.Done():
		return reply{Code: codeNoQuorum, Message: "node is starting"}
	}
}

// handle runs a request on this node. Everything but status needs the
// leader; a follower answers not_leader and names the leader it knows.
func (n *Node) handle(ctx context.Context, req *request) reply {
	if req.Op == opStatus {
		st := n.Status()
		return reply{Code: codeOK, Status: &st}
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	switch req.Op {
	case opApply:
		return n.leaderApply(ctx, req.Data)
	case opJoin:
		return n.leaderJoin(ctx, req.Name, req.Addr)
	case opLeave:
		return n.leaderLeave(ctx, req.Name)
	case opBarrier:
		if err := waitFuture(ctx, n.raft.Barrier(timeLeft(ctx))); err != nil {
			return n.futureError(err)
		}
		index, _ := n.fsm.applied()
		return reply{Code: codeOK, Index: index}
	}
	return reply{Code: codeRejected, Message: fmt.Sprintf("unknown operation %q", req.Op)}
}

func (n *Node) notLeader() reply {
	rep := reply{Code: codeNotLeader, Message: fmt.Sprintf("%s is not the leader", n.cfg.NodeName)}
	if addr, id := n.raft.LeaderWithID(); addr != "" && string(id) != n.cfg.NodeName {
		rep.LeaderAddr = string(addr)
	}
	return rep
}

func (n *Node) leaderApply(ctx context.Context, data []byte) reply {
	// Nothing invalid enters the log, whoever proposed it.
	if _, err := queue.Decode(data); err != nil {
		return reply{Code: codeRejected, Message: err.Error()}
	}
	f := n.raft.Apply(data, timeLeft(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return n.futureError(err)
	}
	res, ok := f.Response().(queue.ApplyResult)
	if !ok {
		return reply{Code: codeRejected, Message: fmt.Sprintf("FSM returned %T", f.Response())}
	}
	return resultReply(res, f.Index())
}

// futureError maps a Raft failure to a reply. ErrNotLeader and a running
// leadership transfer reject a request before it enters the log, so the
// caller may retry; anything else may or may not have been committed.
func (n *Node) futureError(err error) reply {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return reply{Code: codeNoQuorum, Message: "leadership lost; outcome unknown"}
	default:
		return reply{Code: codeNoQuorum, Message: err.Error()}
	}
}

// waitFuture waits for f or ctx. Raft resolves every future eventually (at
// the latest on shutdown), so the helper goroutine always ends.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("not committed in time, outcome unknown: %w", ctx.Err())
	}
}

// timeLeft is the time until ctx's deadline, for Raft's enqueue timeouts.
func timeLeft(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Millisecond, time.Until(dl))
	}
	return defaultApplyTimeout
}
