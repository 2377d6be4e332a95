package outbound

import (
	"net"
	"sync"
	"time"
)

// guardedConn is the raw connection under go-smtp's client. It adds what
// go-smtp lacks: a progress timeout for body writes (smtp_data_xfer_timeout),
// a hard deadline that no later SetDeadline can extend (context
// cancellation), and a count of bytes read (to tell a dead greeting from a
// dead EHLO).
type guardedConn struct {
	net.Conn

	mu        sync.Mutex
	hard      time.Time     // zero: none
	xfer      time.Duration // >0 while the message body is written
	bytesRead int64
}

func (g *guardedConn) clamp(t time.Time) time.Time {
	if !g.hard.IsZero() && (t.IsZero() || t.After(g.hard)) {
		return g.hard
	}
	return t
}

func (g *guardedConn) SetDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Conn.SetDeadline(g.clamp(t))
}

func (g *guardedConn) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Conn.SetReadDeadline(g.clamp(t))
}

func (g *guardedConn) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.Conn.SetWriteDeadline(g.clamp(t))
}

// setHardDeadline makes t the latest possible deadline; a zero t removes it.
func (g *guardedConn) setHardDeadline(t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hard = t
	if !t.IsZero() {
		_ = g.Conn.SetDeadline(t)
	}
}

// setXferTimeout enables (d > 0) or disables the per-write progress timeout.
func (g *guardedConn) setXferTimeout(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.xfer = d
	if d == 0 {
		_ = g.Conn.SetWriteDeadline(g.clamp(time.Time{}))
	}
}

func (g *guardedConn) Write(b []byte) (int, error) {
	g.mu.Lock()
	if g.xfer > 0 {
		_ = g.Conn.SetWriteDeadline(g.clamp(time.Now().Add(g.xfer)))
	}
	g.mu.Unlock()
	return g.Conn.Write(b)
}

func (g *guardedConn) Read(b []byte) (int, error) {
	n, err := g.Conn.Read(b)
	g.mu.Lock()
	g.bytesRead += int64(n)
	g.mu.Unlock()
	return n, err
}

func (g *guardedConn) hasRead() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bytesRead > 0
}
