package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	// handshakeTimeout bounds the TLS handshake plus the protocol byte, so a
	// silent client cannot hold a slot.
	handshakeTimeout = 10 * time.Second
	// maxHandshakes bounds connections that have not yet authenticated.
	maxHandshakes = 128
)

// mux owns the cluster listener. Every connection is TLS with mutual
// authentication; after the handshake the client sends one protocol byte.
// Raft connections go to the Raft transport through Accept, the others to
// serve, which runs them in the mux's goroutines.
type mux struct {
	ln     net.Listener
	server *tls.Config
	serve  func(ctx context.Context, proto byte, conn net.Conn)
	log    hclog.Logger

	raftConns chan net.Conn
	slots     chan struct{}
	ctx       context.Context // canceled on close
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newMux(ln net.Listener, server *tls.Config, log hclog.Logger, serve func(context.Context, byte, net.Conn)) *mux {
	ctx, cancel := context.WithCancel(context.Background())
	m := &mux{
		ln: ln, server: server, serve: serve, log: log,
		raftConns: make(chan net.Conn),
		slots:     make(chan struct{}, maxHandshakes),
		ctx:       ctx, cancel: cancel,
		conns: make(map[net.Conn]struct{}),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			m.log.Warn("cluster listener accept failed", "error", err)
			select {
			case <-time.After(backoff):
			case <-m.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case m.slots <- struct{}{}:
		default:
			c.Close() // too many unauthenticated connections
			continue
		}
		if !m.track(c) {
			<-m.slots
			c.Close()
			return
		}
		m.wg.Add(1)
		go m.handle(c)
	}
}

// track records an open connection so close can end it; false once closed.
func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

func (m *mux) handle(raw net.Conn) {
	defer m.wg.Done()
	tc, proto, err := m.handshake(raw)
	<-m.slots
	if err != nil {
		// A peer without the secret is worth a warning; a connection that
		// just went away is not.
		if errors.Is(err, errNotMember) || errors.Is(err, errNoPeerCert) {
			m.log.Warn("cluster connection refused", "remote", raw.RemoteAddr().String(), "error", err)
		} else {
			m.log.Debug("cluster connection failed", "remote", raw.RemoteAddr().String(), "error", err)
		}
		m.untrack(raw)
		raw.Close()
		return
	}
	switch proto {
	case protoRaft:
		select {
		case m.raftConns <- &trackedConn{Conn: tc, m: m, raw: raw}:
			return // the transport owns it now
		case <-m.ctx.Done():
		}
	case protoForward, protoMember, protoDeliver:
		m.serve(m.ctx, proto, tc)
	default:
		m.log.Warn("cluster connection with unknown protocol byte", "remote", raw.RemoteAddr().String(), "byte", proto)
	}
	m.untrack(raw)
	tc.Close()
}

func (m *mux) handshake(raw net.Conn) (*tls.Conn, byte, error) {
	if err := raw.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, 0, err
	}
	tc := tls.Server(raw, m.server)
	if err := tc.HandshakeContext(m.ctx); err != nil {
		return nil, 0, fmt.Errorf("tls handshake: %w", err)
	}
	var b [1]byte
	if _, err := tc.Read(b[:]); err != nil {
		return nil, 0, fmt.Errorf("read protocol byte: %w", err)
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, 0, err
	}
	return tc, b[0], nil
}

// accept returns the next authenticated Raft connection.
func (m *mux) accept() (net.Conn, error) {
	select {
	case c := <-m.raftConns:
		return c, nil
	case <-m.ctx.Done():
		return nil, net.ErrClosed
	}
}

// close stops the listener, ends every connection it accepted and waits for
// the goroutines serving them.
func (m *mux) close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cancel()
	err := m.ln.Close()
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return err
}

// trackedConn is a Raft connection: closing it forgets it in the mux.
type trackedConn struct {
	net.Conn
	m    *mux
	raw  net.Conn
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.m.untrack(c.raw) })
	return c.Conn.Close()
}

// dialer opens authenticated connections to other nodes.
type dialer struct {
	client *tls.Config
	local  net.Addr // source address of every connection; nil: the kernel's choice
}

// sourceAddr is the source address for connections to other nodes, given
// the cluster listener's address: its IP (any port) when the listener is
// bound to a specific one, so that on a multi-homed host node-to-node
// traffic leaves from the cluster interface, as it arrives there; nil for a
// listener on all addresses.
func sourceAddr(listen net.Addr) net.Addr {
	ta, ok := listen.(*net.TCPAddr)
	if !ok || ta.IP == nil || ta.IP.IsUnspecified() {
		return nil // not a typed nil: net.Dialer must see no address at all
	}
	return &net.TCPAddr{IP: ta.IP, Zone: ta.Zone}
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT, which package
// syscall lacks.
const ipBindAddressNoPort = 24

// bindAddressNoPort makes a socket bound to a source IP take its port at
// connect time, as an unbound one does. Otherwise bind picks the port from
// the range Linux keeps for bind(0), so a connection could hold the very
// port a listener wants (a node restarting on its cluster port), and every
// connection would need a port of its own even to different peers. Best
// effort: without it the connection still works.
func bindAddressNoPort(_, _ string, c syscall.RawConn) error {
	if runtime.GOOS == "linux" {
		c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
		})
	}
	return nil
}

// dial connects to addr, completes the TLS handshake and selects proto.
// Under TLS 1.3 the server checks our certificate after the client's side of
// the handshake is done, so a refusal shows only on the first read.
func (d *dialer) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	nd := &net.Dialer{}
	if d.local != nil {
		nd.LocalAddr, nd.Control = d.local, bindAddressNoPort
	}
	td := &tls.Dialer{NetDialer: nd, Config: d.client}
	c, err := td.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: connect to %s: %w", addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// streamLayer adapts the mux and dialer to raft.StreamLayer.
type streamLayer struct {
	m         *mux
	d         *dialer
	advertise net.Addr
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Accept() (net.Conn, error) { return s.m.accept() }
func (s *streamLayer) Close() error              { return s.m.close() }
func (s *streamLayer) Addr() net.Addr            { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.m.ctx, timeout)
	defer cancel()
	return s.d.dial(ctx, string(address), protoRaft)
}

// advertiseAddr is the address this node gives Raft as its own.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
