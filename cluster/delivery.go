package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// DeliveryHandler runs the delivery jobs the leader hands to this node. The
// cluster package only carries the bytes; the daemon encodes jobs and
// results.
type DeliveryHandler interface {
	// Deliver validates and runs one job and returns its encoded result.
	// An error means nothing was attempted, so the leader may run the job
	// on another node; an error wrapping ErrJobAborted instead means the
	// job was cut short by ctx and its results are not final: the node
	// closes the connection without a reply, which the leader handles as a
	// lost connection. ctx ends when the leader closes the connection, when
	// this node loses its lease (it stops following the sender as leader,
	// or hears nothing from it for a heartbeat timeout), or at shutdown.
	Deliver(ctx context.Context, job []byte) ([]byte, error)
	// Epilogue takes what the leader sends after it has recorded the
	// result (the job's mail log lines). It is not called when the leader
	// sent nothing or hung up.
	Epilogue(data []byte)
	// Unrecorded gets a job and the result Deliver returned for it when the
	// leader never confirmed that it recorded the result: it hung up or
	// died after the job ran. Without a record the next leader runs the
	// job again; the handler may commit what must not be repeated. It runs
	// in its own goroutine.
	Unrecorded(job, result []byte)
}

// ErrJobNotRun marks a delivery job that certainly did not start on the
// chosen node: it may be run elsewhere. Any other SendDelivery error means
// the outcome is unknown.
var ErrJobNotRun = errors.New("cluster: delivery job not run")

// ErrJobAborted is returned by a DeliveryHandler whose job was cancelled
// before it finished (shutdown, lost lease): no result is sent.
var ErrJobAborted = errors.New("cluster: delivery job aborted")

const (
	// deliveryConnectTimeout bounds connecting to a delivery node; a node
	// that does not answer in time is skipped, nothing was sent.
	deliveryConnectTimeout = 3 * time.Second
	// deliveryCatchUp is how long a node may wait to apply the log index
	// the leader had applied when it sent the job.
	deliveryCatchUp = 5 * time.Second
	// leaseCheck is how often a running job checks the node's lease.
	leaseCheck = 50 * time.Millisecond
	// epilogueTimeout bounds the wait for the epilogue: the leader commits
	// the result through Raft first.
	epilogueTimeout = time.Minute
	// jobConnIdle is how long a member keeps an idle job connection open;
	// the leader drops its idle ones sooner (jobPoolIdle), so it does not
	// send a job on a connection the member is just closing.
	jobConnIdle = 5 * time.Minute
	jobPoolIdle = time.Minute
	// jobPoolMax bounds the idle job connections kept per member.
	jobPoolMax = 64
)

// jobPool keeps the leader's idle job connections per member: a TLS
// handshake per job would cost more than the job's own cluster traffic.
type jobPool struct {
	mu    sync.Mutex
	idle  map[string][]idleConn
	close bool
}

type idleConn struct {
	conn  net.Conn
	since time.Time
}

// get returns an idle connection to addr, or nil.
func (p *jobPool) get(addr string) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for list := p.idle[addr]; len(list) > 0; list = p.idle[addr] {
		last := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		if time.Since(last.since) < jobPoolIdle && peerStillOpen(last.conn) {
			return last.conn
		}
		last.conn.Close()
	}
	return nil
}

func (p *jobPool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close || len(p.idle[addr]) >= jobPoolMax {
		c.Close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]idleConn{}
	}
	p.idle[addr] = append(p.idle[addr], idleConn{conn: c, since: time.Now()})
}

// closeAll closes every idle connection; later puts close theirs.
func (p *jobPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.close = true
	for _, list := range p.idle {
		for _, ic := range list {
			ic.conn.Close()
		}
	}
	p.idle = nil
}

// DeliveryCall is a job that ran on another node; Result is its encoded
// result. Finish or Close must be called.
type DeliveryCall struct {
	Result []byte
	conn   net.Conn
	reuse  func(net.Conn) // takes the connection back for the next job
	once   sync.Once
}

// Finish sends the epilogue to the node that ran the job; the connection
// then carries that node's next job.
func (c *DeliveryCall) Finish(epilogue []byte) error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.conn.SetWriteDeadline(time.Now().Add(writeReplyTimeout))
		if err = writeFrame(c.conn, epilogue); err != nil || c.reuse == nil {
			c.conn.Close()
			return
		}
		c.reuse(c.conn)
	})
	return err
}

// Close ends the call without an epilogue.
func (c *DeliveryCall) Close() {
	c.once.Do(func() { c.conn.Close() })
}

// SendDelivery runs job on the member at addr. That node refuses unless it
// follows this node as leader; it first applies the log up to the index
// this node has applied, so the job's message and body are there. The job
// is cancelled there when ctx ends (the connection is closed). An error
// wrapping ErrJobNotRun means nothing was attempted.
func (n *Node) SendDelivery(ctx context.Context, addr string, job []byte) (*DeliveryCall, error) {
	notRun := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrJobNotRun, fmt.Sprintf(format, args...))
	}
	switch {
	case n.raft.State() != raft.Leader:
		return nil, notRun("%s does not lead the cluster", n.cfg.NodeName)
	case n.dialer == nil:
		return nil, notRun("%s has no cluster listener", n.cfg.NodeName)
	case addr == n.addr:
		return nil, notRun("%s is this node", addr)
	case len(job) == 0:
		return nil, notRun("empty job")
	}
	if err := validateAddr(addr); err != nil {
		return nil, notRun("%v", err)
	}
	index, _ := n.fsm.applied()
	payload, err := encodeRequest(&request{Op: opDeliver, Index: index, TimeoutMS: deliveryCatchUp.Milliseconds(), Data: job})
	if err != nil {
		return nil, notRun("%v", err)
	}
	// An idle connection from an earlier job first; when writing to it
	// fails (the node restarted, say), the job was not sent: dial anew.
	conn, pooled := n.jobConns.get(addr), true
	for {
		if conn == nil {
			pooled = false
			dctx, cancel := context.WithTimeout(ctx, deliveryConnectTimeout)
			conn, err = n.dialer.dial(dctx, addr, protoDeliver)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrJobNotRun, err)
			}
		}
		conn.SetWriteDeadline(time.Now().Add(writeReplyTimeout))
		err = writeFrame(conn, payload)
		if err == nil {
			break
		}
		conn.Close()
		if !pooled {
			return nil, fmt.Errorf("%w: cluster: delivery node %s: %w", ErrJobNotRun, addr, err)
		}
		conn = nil
	}
	conn.SetWriteDeadline(time.Time{})
	// Closing the connection is what cancels the job on the other node.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	b, err := readFrame(conn)
	if !stop() && err == nil {
		// ctx ended just as the reply came: the connection's deadline is
		// spoilt, so it carries no further job.
		err = fmt.Errorf("cluster: delivery to %s: %w", addr, context.Cause(ctx))
		b = nil
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cluster: delivery node %s: %w", addr, err)
	}
	rep, err := decodeReply(b)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cluster: delivery node %s: %w", addr, err)
	}
	switch rep.Code {
	case codeOK:
		conn.SetDeadline(time.Time{})
		return &DeliveryCall{Result: rep.Payload, conn: conn, reuse: func(c net.Conn) { n.jobConns.put(addr, c) }}, nil
	case codeRefused, codeRejected:
		conn.Close()
		return nil, notRun("%s: %s", addr, rep.Message)
	default:
		conn.Close()
		return nil, fmt.Errorf("cluster: delivery node %s answered %s: %s", addr, rep.Code, rep.Message)
	}
}

// serveDelivery runs the jobs of a 'D' connection one after the other:
// request, reply, then the leader's epilogue, for each job.
func (n *Node) serveDelivery(ctx context.Context, conn net.Conn) {
	wait := readRequestTimeout
	for {
		conn.SetReadDeadline(time.Now().Add(wait))
		b, err := readFrame(conn)
		if err != nil {
			if wait == readRequestTimeout {
				n.log.Debug("delivery request not read", "remote", conn.RemoteAddr().String(), "error", err)
			}
			return
		}
		conn.SetReadDeadline(time.Time{})
		if !n.serveJob(ctx, conn, b) {
			return
		}
		wait = jobConnIdle
	}
}

// serveJob runs one job and reports whether the connection may carry the
// next one.
func (n *Node) serveJob(ctx context.Context, conn net.Conn, b []byte) bool {
	req, leader, rep := n.admitDelivery(ctx, conn, b)
	if req == nil {
		n.writeReply(conn, rep)
		return false
	}

	// The job runs under the lease: it ends when the leader hangs up (the
	// reader below returns) or when this node stops following it.
	jctx, cancelJob := context.WithCancelCause(ctx)
	defer cancelJob(nil)
	var epilogue []byte
	var epilogueErr error
	hungUp := make(chan struct{})
	go func() {
		epilogue, epilogueErr = readFrame(conn)
		close(hungUp)
	}()
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go n.watchLease(leader, hungUp, stopWatch, watchDone, cancelJob)

	result, err := n.cfg.Deliveries.Deliver(jctx, req.Data)
	close(stopWatch)
	<-watchDone
	if cause := context.Cause(jctx); cause != nil && jctx.Err() != nil {
		n.log.Warn("delivery job cancelled", "leader", leader, "reason", cause)
	}
	switch {
	case errors.Is(err, ErrJobAborted):
		// No reply: the leader sees a lost connection and, once this
		// node's lease is surely over, runs the job elsewhere.
		conn.SetReadDeadline(time.Now())
		<-hungUp
		return false
	case err != nil:
		rep = reply{Code: codeRejected, Message: err.Error()}
	default:
		rep = reply{Code: codeOK, Payload: result}
	}
	// The job ran, but from here on the leader may never record its result.
	unrecorded := func() {
		if rep.Code == codeOK {
			go n.cfg.Deliveries.Unrecorded(req.Data, result)
		}
	}
	select {
	case <-hungUp:
		// The leader hung up (or broke the protocol) before the result.
		unrecorded()
		return false
	default:
	}
	if !n.writeReply(conn, rep) || rep.Code != codeOK {
		unrecorded()
		conn.SetReadDeadline(time.Now())
		<-hungUp
		return false
	}
	conn.SetReadDeadline(time.Now().Add(epilogueTimeout))
	<-hungUp
	if epilogueErr != nil {
		// The leader got the result but went away before it said it had
		// recorded it; recording it twice is harmless.
		unrecorded()
		return false
	}
	if len(epilogue) > 0 {
		n.cfg.Deliveries.Epilogue(epilogue)
	}
	return true
}

// admitDelivery decodes a job request and checks that this node may run
// it now: it has a handler, follows the sender as leader, and has applied
// the log up to the index the leader had. Otherwise it returns the reply.
func (n *Node) admitDelivery(ctx context.Context, conn net.Conn, b []byte) (*request, string, reply) {
	req, err := decodeRequest(protoDeliver, b)
	if err != nil {
		return nil, "", reply{Code: codeRejected, Message: err.Error()}
	}
	leader, err := peerName(conn)
	if err != nil {
		return nil, "", reply{Code: codeRejected, Message: err.Error()}
	}
	if n.cfg.Deliveries == nil {
		return nil, "", reply{Code: codeRefused, Message: fmt.Sprintf("%s takes no delivery jobs", n.cfg.NodeName)}
	}
	wctx, cancel := context.WithTimeout(ctx, req.timeout())
	defer cancel()
	select {
	case <-n.started:
	case <-wctx.Done():
		return nil, "", reply{Code: codeRefused, Message: fmt.Sprintf("%s is starting", n.cfg.NodeName)}
	}
	if err := n.checkLease(leader); err != nil {
		return nil, "", reply{Code: codeRefused, Message: err.Error()}
	}
	if err := n.fsm.wait(wctx, req.Index); err != nil {
		return nil, "", reply{Code: codeRefused, Message: fmt.Sprintf("%s lags behind the leader: %v", n.cfg.NodeName, err)}
	}
	return req, leader, reply{}
}

// watchLease cancels the running job when the leader hangs up or this node
// loses its lease, until stop is closed.
func (n *Node) watchLease(leader string, hungUp <-chan struct{}, stop <-chan struct{}, done chan<- struct{}, cancel context.CancelCauseFunc) {
	defer close(done)
	t := time.NewTicker(leaseCheck)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-hungUp:
			cancel(fmt.Errorf("leader %s closed the connection", leader))
			return
		case <-t.C:
			if err := n.checkLease(leader); err != nil {
				cancel(err)
				return
			}
		}
	}
}

// checkLease reports why this node may not deliver for leader: it must be
// a follower of exactly that leader and have heard from it within a
// heartbeat timeout. A new leader waits yubin_delivery_takeover_delay,
// longer than that, before it delivers, so the old leader's jobs have been
// cancelled by then.
func (n *Node) checkLease(leader string) error {
	if st := n.raft.State(); st != raft.Follower {
		return fmt.Errorf("%s is %s, not a follower of %s", n.cfg.NodeName, st, leader)
	}
	if _, id := n.raft.LeaderWithID(); string(id) != leader {
		return fmt.Errorf("%s follows %q, not %s", n.cfg.NodeName, id, leader)
	}
	lease := n.raft.ReloadableConfig().HeartbeatTimeout
	if since := time.Since(n.raft.LastContact()); since > lease {
		return fmt.Errorf("%s has not heard from leader %s for %v", n.cfg.NodeName, leader, since.Round(time.Millisecond))
	}
	return nil
}

// DeliveryLease is how long after losing a job's connection the leader
// must wait before that job's delivery is certainly over on the other node:
// by then the node saw the connection close or its lease ran out.
func (n *Node) DeliveryLease() time.Duration {
	return n.raft.ReloadableConfig().HeartbeatTimeout + 2*leaseCheck
}

// writeReply sends rep and reports whether it was sent.
func (n *Node) writeReply(conn net.Conn, rep reply) bool {
	out, err := encodeReply(&rep)
	if err != nil {
		n.log.Error("cluster reply not encoded", "error", err)
		return false
	}
	conn.SetWriteDeadline(time.Now().Add(writeReplyTimeout))
	if err := writeFrame(conn, out); err != nil {
		n.log.Debug("cluster reply not sent", "remote", conn.RemoteAddr().String(), "error", err)
		return false
	}
	return true
}

// peerName is the node name in the peer's certificate: the mux accepted
// only certificates the cluster CA signed, so the name is authentic.
func peerName(conn net.Conn) (string, error) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return "", errors.New("cluster: delivery connection is not TLS")
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errNoPeerCert
	}
	name := certs[0].Subject.CommonName
	if err := validateName(name); err != nil {
		return "", fmt.Errorf("cluster: peer certificate: %w", err)
	}
	return name, nil
}

// peerStillOpen reports whether an idle connection has neither been closed
// by its peer nor received anything unexpected: a member that restarted
// closed it, and a job sent on it would fail only after it was written,
// with an outcome the leader would have to treat as unknown.
func peerStillOpen(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read (EAGAIN) is the healthy idle state; 0 bytes is
		// the peer's FIN; data is a protocol violation.
		open = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true
	})
	return err == nil && open
}
