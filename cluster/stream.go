package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarded commands travel over a long-lived stream per leader: a TLS
// handshake per message cost more CPU than the rest of the forwarding. Each
// frame starts with a request ID (uvarint); the leader answers requests as
// they complete, in any order, tagging each reply with its ID.
//
// The retry rule of toLeader still holds: a frame whose write failed was
// cut short, and the leader runs only whole frames, so it was not sent; a
// request whose frame went out but whose reply never came (the connection
// broke, the deadline passed) has an unknown outcome.

const (
	// streamIdle closes a client stream nobody used for this long.
	streamIdle = time.Minute
	// streamWorkers bounds the requests a leader runs at once for one stream;
	// beyond it, reading the stream waits (back pressure on the follower).
	streamWorkers = 512
)

var errStreamClosed = errors.New("cluster: forward stream closed")

// forwarder keeps one stream per leader address.
type forwarder struct {
	d *dialer

	mu      sync.Mutex
	streams map[string]*stream
	closed  bool
}

func newForwarder(d *dialer) *forwarder {
	return &forwarder{d: d, streams: map[string]*stream{}}
}

// roundTrip sends payload to the leader at addr and waits for its reply.
// sent reports whether the request may have reached the leader.
func (f *forwarder) roundTrip(ctx context.Context, addr string, payload []byte) (rep *reply, sent bool, err error) {
	s, err := f.stream(ctx, addr)
	if err != nil {
		return nil, false, err
	}
	return s.roundTrip(ctx, payload)
}

// stream returns the open stream to addr, dialling one if there is none.
// Dialling under the lock is deliberate: callers of the same leader wait
// for one handshake instead of making one each.
func (f *forwarder) stream(ctx context.Context, addr string) (*stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errStreamClosed
	}
	if s := f.streams[addr]; s != nil && !s.isBroken() {
		return s, nil
	}
	conn, err := f.d.dial(ctx, addr, protoForward)
	if err != nil {
		return nil, err
	}
	s := newStream(conn, func(s *stream) { f.forget(addr, s) })
	f.streams[addr] = s
	return s, nil
}

func (f *forwarder) forget(addr string, s *stream) {
	f.mu.Lock()
	if f.streams[addr] == s {
		delete(f.streams, addr)
	}
	f.mu.Unlock()
}

// close ends every stream; waiting callers get errStreamClosed.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	streams := f.streams
	f.streams = map[string]*stream{}
	f.mu.Unlock()
	for _, s := range streams {
		s.fail(errStreamClosed)
	}
}

// stream is the client side of one forward connection.
type stream struct {
	conn   net.Conn
	onDone func(*stream)
	wmu    sync.Mutex // one frame at a time on the wire

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan streamResult
	err     error // set once the stream broke
	idle    *time.Timer
}

type streamResult struct {
	rep *reply
	err error
}

func newStream(conn net.Conn, onDone func(*stream)) *stream {
	s := &stream{conn: conn, onDone: onDone, pending: map[uint64]chan streamResult{}}
	s.idle = time.AfterFunc(streamIdle, s.closeIfIdle)
	go s.readLoop()
	return s
}

func (s *stream) isBroken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

func (s *stream) roundTrip(ctx context.Context, payload []byte) (*reply, bool, error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil, false, s.err
	}
	s.next++
	id := s.next
	ch := make(chan streamResult, 1)
	s.pending[id] = ch
	s.idle.Reset(streamIdle)
	s.mu.Unlock()

	frame := make([]byte, 4, 4+binary.MaxVarintLen64+len(payload))
	frame = binary.AppendUvarint(frame, id)
	frame = append(frame, payload...)
	if len(frame)-4 > maxFrame {
		s.drop(id)
		return nil, false, fmt.Errorf("cluster: frame of %d bytes exceeds %d", len(frame)-4, maxFrame)
	}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	s.wmu.Lock()
	dl, _ := ctx.Deadline()
	s.conn.SetWriteDeadline(dl)
	_, err := s.conn.Write(frame)
	s.wmu.Unlock()
	if err != nil {
		// A frame cut short is never run; the stream is unusable now.
		s.drop(id)
		s.fail(fmt.Errorf("cluster: forward stream: %w", err))
		return nil, false, err
	}
	select {
	case r := <-ch:
		return r.rep, true, r.err
	case <-ctx.Done():
		s.drop(id)
		return nil, true, ctx.Err()
	}
}

func (s *stream) drop(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// readLoop hands each reply to the request waiting for it.
func (s *stream) readLoop() {
	for {
		b, err := readFrame(s.conn)
		if err != nil {
			s.fail(err)
			return
		}
		id, k := binary.Uvarint(b)
		if k <= 0 {
			s.fail(errors.New("cluster: forward stream: reply without request ID"))
			return
		}
		rep, err := decodeReply(b[k:])
		s.mu.Lock()
		ch := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if ch != nil { // nil: its caller gave up already
			ch <- streamResult{rep: rep, err: err}
		}
	}
}

// fail marks the stream broken, closes it and fails every waiting request
// (their outcome is unknown: the leader may have run them).
func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	pending := s.pending
	s.pending = nil
	s.idle.Stop()
	s.mu.Unlock()
	s.conn.Close()
	for _, ch := range pending {
		ch <- streamResult{err: fmt.Errorf("cluster: forward stream broke: %w", err)}
	}
	s.onDone(s)
}

func (s *stream) closeIfIdle() {
	s.mu.Lock()
	busy := len(s.pending) > 0
	if busy {
		s.idle.Reset(streamIdle)
	}
	s.mu.Unlock()
	if !busy {
		s.fail(errStreamClosed)
	}
}

// serveStream is the leader side of a forward connection: it runs every
// request as it arrives and writes each reply when it is ready.
func (n *Node) serveStream(ctx context.Context, conn net.Conn) {
	var wmu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	workers := make(chan struct{}, streamWorkers)
	for {
		// No read deadline: the stream idles between messages; the mux
		// closes it on shutdown and the follower when it is done with it.
		conn.SetReadDeadline(time.Time{})
		b, err := readFrame(conn)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				n.log.Debug("forward stream ended", "remote", conn.RemoteAddr().String(), "error", err)
			}
			return
		}
		id, k := binary.Uvarint(b)
		if k <= 0 {
			n.log.Warn("forward stream: frame without request ID", "remote", conn.RemoteAddr().String())
			return
		}
		select {
		case workers <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-workers }()
			rep := n.serveRequest(ctx, protoForward, b[k:])
			out, err := encodeReply(&rep)
			if err != nil {
				n.log.Error("cluster reply not encoded", "error", err)
				return
			}
			frame := make([]byte, 4, 4+binary.MaxVarintLen64+len(out))
			frame = binary.AppendUvarint(frame, id)
			frame = append(frame, out...)
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			wmu.Lock()
			defer wmu.Unlock()
			conn.SetWriteDeadline(time.Now().Add(writeReplyTimeout))
			if _, err := conn.Write(frame); err != nil {
				n.log.Debug("cluster reply not sent", "remote", conn.RemoteAddr().String(), "error", err)
				conn.Close() // the follower sees the break: outcome unknown
			}
		}()
	}
}
