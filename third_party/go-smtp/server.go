package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

var ErrServerClosed = errors.New("smtp: server already closed")

// Logger interface is used by Server to report unexpected internal errors.
type Logger interface {
	Printf(format string, v ...interface{})
	Println(v ...interface{})
}

// A SMTP server.
type Server struct {
	// The type of network, "tcp" or "unix".
	Network string
	// TCP or Unix address to listen on.
	Addr string
	// The server TLS configuration.
	TLSConfig *tls.Config
	// Enable LMTP mode, as defined in RFC 2033.
	LMTP bool

	Domain            string
	MaxRecipients     int
	MaxMessageBytes   int64
	MaxLineLength     int
	AllowInsecureAuth bool
	Debug             io.Writer
	ErrorLog          Logger
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration

	// Advertise SMTPUTF8 (RFC 6531) capability.
	// Should be used only if backend supports it.
	EnableSMTPUTF8 bool

	// Advertise REQUIRETLS (RFC 8689) capability.
	// Should be used only if backend supports it.
	EnableREQUIRETLS bool

	// Advertise BINARYMIME (RFC 3030) capability.
	// Should be used only if backend supports it.
	EnableBINARYMIME bool

	// Advertise DSN (RFC 3461) capability.
	// Should be used only if backend supports it.
	EnableDSN bool

	// Advertise RRVS (RFC 7293) capability.
	// Should be used only if backend supports it.
	EnableRRVS bool

	// Advertise DELIVERBY (RFC 2852) capability.
	// Should be used only if backend supports it.
	EnableDELIVERBY bool
	// The minimum time, with seconds precision, that a client
	// may specify in the BY argument with return mode.
	// A zero value indicates no set minimum.
	// Only use if DELIVERBY is enabled.
	MinimumDeliverByTime time.Duration

	// Advertise MT-PRIORITY (RFC 6710) capability.
	// Should only be used if backend supports it.
	EnableMTPRIORITY bool
	// The priority profile mapping as defined
	// in RFC 6710 section 10.2.
	//
	// Default value of NONE to advertise no specific profile.
	MtPriorityProfile PriorityProfile

	// The server backend.
	Backend Backend

	// Greeting, when set, replaces the text of the "220" connection
	// greeting (by default "<Domain> ESMTP Service Ready").
	Greeting string

	// HeloOptional accepts MAIL before HELO/EHLO, as RFC 5321 permits; the
	// Session is then created on demand with an empty Conn.Hostname.
	HeloOptional bool

	// RawPaths passes the MAIL FROM and RCPT TO paths to the Session exactly
	// as the client sent them, angle brackets, quotes and source routes
	// included ("<>" for the null sender), so the backend can apply its own
	// strict address parser. ESMTP parameters are still parsed.
	RawPaths bool

	// MaxDataLineLength limits line length inside DATA. Zero applies
	// MaxLineLength, a negative value disables the limit (message lines
	// are then only bounded by MaxMessageBytes).
	MaxDataLineLength int

	// BareNewline selects how a bare LF, a bare CR or a NUL byte is handled
	// in command lines and in DATA. The zero value keeps the historical
	// behaviour. In every mode, DATA ends only at <CR><LF>.<CR><LF>.
	BareNewline BareNewlinePolicy

	// EnforceSync enforces RFC 2920 command synchronization: when a client
	// has sent more input after a command that must end a pipelined group
	// (HELO, EHLO, DATA, VRFY, EXPN, NOOP, TURN, STARTTLS), or after any
	// command when it has not seen PIPELINING in an EHLO reply, the server
	// replies "554 5.5.0 Error: SMTP protocol synchronization" and closes
	// the connection. Only input already received is considered.
	EnforceSync bool

	// GreetPause delays the greeting; with EnforceSync, a client that talks
	// during the pause is disconnected with the synchronization error.
	GreetPause time.Duration

	// ConnectHook is called once per connection before the greeting. A
	// non-nil error is written as the reply (an *SMTPError keeps its code,
	// anything else becomes 421 4.3.0) and the connection is closed.
	ConnectHook func(c *Conn) error

	// CommandHook is called with every command line (without CRLF) before
	// the command is executed. A non-nil error is written as the reply and
	// the command is not executed; an *SMTPError with code 221, 421 or 521
	// closes the connection after the reply. An *SMTPError with a 2xx code
	// is a positive reply to a command the hook has handled itself.
	CommandHook func(c *Conn, line string) error

	// ReplyHook is called before every reply is written and may change it,
	// e.g. to reword replies or to slow down clients that make errors.
	ReplyHook func(c *Conn, r *Reply)

	// DisconnectHook is called once the connection has been closed.
	DisconnectHook func(c *Conn)

	wg   sync.WaitGroup
	done chan struct{}

	locker    sync.Mutex
	listeners []net.Listener
	conns     map[*Conn]struct{}
}

// Reply is one server reply, as passed to Server.ReplyHook.
type Reply struct {
	// Command is the upper-cased verb being answered, "" for the greeting
	// and for replies not tied to a command (timeouts, line too long).
	Command      string
	Code         int
	EnhancedCode EnhancedCode
	// Lines is the reply text, one element per line.
	Lines []string
}

// BareNewlinePolicy selects how a server treats line endings other than
// <CR><LF> and NUL bytes.
type BareNewlinePolicy int

const (
	// BareNewlineAllow passes bare LF, bare CR and NUL through unchanged
	// and accepts command lines ending in a bare LF.
	BareNewlineAllow BareNewlinePolicy = iota
	// BareNewlineNormalize turns a bare LF in DATA into <CR><LF> (a line
	// starting after a bare LF is never the end-of-data line) and accepts
	// command lines ending in a bare LF.
	BareNewlineNormalize
	// BareNewlineReject replies with ErrBareLF, ErrBareCR or ErrNUL and
	// closes the connection, in command lines and in DATA.
	BareNewlineReject
)

// New creates a new SMTP server.
func NewServer(be Backend) *Server {
	return &Server{
		// Doubled maximum line length per RFC 5321 (Section 4.5.3.1.6)
		MaxLineLength: 2000,

		Backend:  be,
		done:     make(chan struct{}, 1),
		ErrorLog: log.New(os.Stderr, "smtp/server ", log.LstdFlags),
		conns:    make(map[*Conn]struct{}),
	}
}

// Serve accepts incoming connections on the Listener l.
func (s *Server) Serve(l net.Listener) error {
	s.locker.Lock()
	s.listeners = append(s.listeners, l)
	s.locker.Unlock()

	var tempDelay time.Duration // how long to sleep on accept failure

	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				// we called Close()
				return nil
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Temporary() {
				if tempDelay == 0 {
					tempDelay = 5 * time.Millisecond
				} else {
					tempDelay *= 2
				}
				if max := 1 * time.Second; tempDelay > max {
					tempDelay = max
				}
				s.ErrorLog.Printf("accept error: %s; retrying in %s", err, tempDelay)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}

		s.wg.Add(1)
		go func() {
			defer s.wg.Done()

			err := s.handleConn(newConn(c, s))
			if err != nil {
				s.ErrorLog.Printf("error handling %v: %s", c.RemoteAddr(), err)
			}
		}()
	}
}

func (s *Server) handleConn(c *Conn) error {
	s.locker.Lock()
	s.conns[c] = struct{}{}
	s.locker.Unlock()

	defer func() {
		c.Close()

		s.locker.Lock()
		delete(s.conns, c)
		s.locker.Unlock()

		if s.DisconnectHook != nil {
			s.DisconnectHook(c)
		}
	}()

	if tlsConn, ok := c.conn.(*tls.Conn); ok {
		if d := s.ReadTimeout; d != 0 {
			c.conn.SetReadDeadline(time.Now().Add(d))
		}
		if d := s.WriteTimeout; d != 0 {
			c.conn.SetWriteDeadline(time.Now().Add(d))
		}
		if err := tlsConn.Handshake(); err != nil {
			return err
		}
	}

	if s.ConnectHook != nil {
		if err := s.ConnectHook(c); err != nil {
			c.writeError(421, EnhancedCode{4, 3, 0}, err)
			return nil
		}
	}

	if s.GreetPause > 0 && s.EnforceSync {
		talked, err := c.inputDuring(s.GreetPause)
		if err != nil {
			return nil // client went away before the greeting
		}
		if talked {
			c.syncError()
			return nil
		}
	}

	c.greet()

	for {
		if c.isClosed() {
			return nil
		}
		line, err := c.readLine()
		if err == nil {
			c.command = commandVerb(line)
			if s.EnforceSync && c.pipeliningViolation(c.command) {
				c.syncError()
				return nil
			}
			if s.CommandHook != nil {
				if herr := s.CommandHook(c, line); herr != nil {
					c.writeError(421, EnhancedCode{4, 3, 0}, herr)
					if closesConnection(herr) {
						return nil
					}
					continue
				}
			}

			cmd, arg, err := parseCmd(line)
			if err != nil {
				c.protocolError(501, EnhancedCode{5, 5, 2}, "Bad command")
				continue
			}

			c.handle(cmd, arg)
		} else {
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return nil
			}
			c.command = ""
			var smtpErr *SMTPError
			if errors.As(err, &smtpErr) {
				// A malformed line (bare newline policy): reply and close.
				c.writeError(0, EnhancedCode{}, smtpErr)
				return nil
			}
			if err == ErrTooLongLine {
				c.writeResponse(500, EnhancedCode{5, 4, 0}, "Too long line, closing connection")
				return nil
			}

			if neterr, ok := err.(net.Error); ok && neterr.Timeout() {
				c.writeResponse(421, EnhancedCode{4, 4, 2}, "Idle timeout, bye bye")
				return nil
			}

			c.writeResponse(421, EnhancedCode{4, 4, 0}, "Connection error, sorry")
			return err
		}
	}
}

func (s *Server) network() string {
	if s.Network != "" {
		return s.Network
	}
	if s.LMTP {
		return "unix"
	}
	return "tcp"
}

// ListenAndServe listens on the network address s.Addr and then calls Serve
// to handle requests on incoming connections.
//
// If s.Addr is blank and LMTP is disabled, ":smtp" is used.
func (s *Server) ListenAndServe() error {
	network := s.network()

	addr := s.Addr
	if !s.LMTP && addr == "" {
		addr = ":smtp"
	}

	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}

	return s.Serve(l)
}

// ListenAndServeTLS listens on the TCP network address s.Addr and then calls
// Serve to handle requests on incoming TLS connections.
//
// If s.Addr is blank and LMTP is disabled, ":smtps" is used.
func (s *Server) ListenAndServeTLS() error {
	network := s.network()

	addr := s.Addr
	if !s.LMTP && addr == "" {
		addr = ":smtps"
	}

	l, err := tls.Listen(network, addr, s.TLSConfig)
	if err != nil {
		return err
	}

	return s.Serve(l)
}

// Close immediately closes all active listeners and connections.
//
// Close returns any error returned from closing the server's underlying
// listener(s).
func (s *Server) Close() error {
	var err error
	select {
	case <-s.done:
		// Already closed or shutting down: still close what is left, so
		// that Close can cut a Shutdown short.
		err = ErrServerClosed
	default:
		close(s.done)
	}

	s.locker.Lock()
	for _, l := range s.listeners {
		if lerr := l.Close(); lerr != nil && err == nil && !errors.Is(lerr, net.ErrClosed) {
			err = lerr
		}
	}

	for conn := range s.conns {
		conn.Close()
	}
	s.locker.Unlock()

	return err
}

// Shutdown gracefully shuts down the server without interrupting any
// active connections. Shutdown works by first closing all open
// listeners and then waiting indefinitely for connections to return to
// idle and then shut down.
// If the provided context expires before the shutdown is complete,
// Shutdown returns the context's error, otherwise it returns any
// error returned from closing the Server's underlying Listener(s).
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.done:
		return ErrServerClosed
	default:
		close(s.done)
	}

	var err error
	s.locker.Lock()
	for _, l := range s.listeners {
		if lerr := l.Close(); lerr != nil && err == nil {
			err = lerr
		}
	}
	s.locker.Unlock()

	connDone := make(chan struct{})
	go func() {
		defer close(connDone)
		s.wg.Wait()
	}()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-connDone:
		return err
	}
}
