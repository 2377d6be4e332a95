package inbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	smtp "github.com/emersion/go-smtp"

	"github.com/yubin-mta/yubin/smtp/inbound/anvil"
)

// Server is an SMTP server for one listener configuration (one master.cf
// smtpd service).
type Server struct {
	s     Settings
	q     Queue
	smtp  *smtp.Server
	anvil *anvil.Anvil
	base  context.Context // cancelled by Shutdown: aborts DNS lookups and Submit
	stop  context.CancelFunc
	mu    sync.Mutex
	conns map[*smtp.Conn]*connState
}

// NewServer builds a server; Serve starts it.
func NewServer(s Settings, q Queue) *Server {
	s, warnings := s.withDefaults()
	srv := &Server{s: s, q: q, conns: map[*smtp.Conn]*connState{}, anvil: anvil.New(s.Limits.TimeUnit, s.Now)}
	srv.base, srv.stop = context.WithCancel(context.Background())
	for _, w := range warnings {
		s.Log.Printf(s.ServiceName, "warning: %s", w)
	}

	gs := smtp.NewServer(backend{srv})
	gs.Domain = s.Hostname
	gs.Greeting = s.Banner
	gs.MaxMessageBytes = s.MessageSizeLimit
	gs.MaxLineLength = s.LineLengthLimit + 1 // the reader counts the CR, not the LF
	gs.MaxDataLineLength = -1
	if s.TextLineLimit > 0 {
		gs.MaxDataLineLength = s.TextLineLimit + 2 // the DATA reader counts CR and LF
	}
	gs.ReadTimeout = s.Timeout
	gs.WriteTimeout = s.Timeout
	gs.EnableSMTPUTF8 = !s.DisableSMTPUTF8
	gs.EnableDSN = true
	gs.TLSConfig = s.TLSConfig
	gs.AllowInsecureAuth = s.AllowPlaintextAuth && !s.TLSRequired
	gs.HeloOptional = !s.HeloRequired
	gs.RawPaths = true
	gs.EnforceSync = !s.AllowUnauthPipelining
	gs.GreetPause = s.GreetPause
	switch s.ForbidBareNewline {
	case "yes":
		gs.BareNewline = smtp.BareNewlineReject
	case "normalize":
		gs.BareNewline = smtp.BareNewlineNormalize
	default:
		gs.BareNewline = smtp.BareNewlineAllow
	}
	gs.ErrorLog = logAdapter{srv}
	gs.ConnectHook = srv.onConnect
	gs.CommandHook = srv.onCommand
	gs.ReplyHook = srv.onReply
	gs.DisconnectHook = srv.onDisconnect
	srv.smtp = gs
	return srv
}

// Serve accepts connections on l until Shutdown.
func (srv *Server) Serve(l net.Listener) error {
	if err := srv.smtp.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtpd: serve %s: %w", l.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for the open sessions to
// end. When ctx expires first, the remaining connections are closed and
// ctx's error is returned.
func (srv *Server) Shutdown(ctx context.Context) error {
	err := srv.smtp.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil // already shut down
	}
	if err != nil && ctx.Err() != nil {
		srv.stop()
		_ = srv.smtp.Close() // already shutting down; ErrServerClosed is expected
		return fmt.Errorf("smtpd: shutdown: %w", ctx.Err())
	}
	srv.stop()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (srv *Server) state(c *smtp.Conn) *connState {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.conns[c]
}

// backend creates go-smtp sessions bound to the connection's state.
type backend struct{ srv *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	st := b.srv.state(c)
	if st == nil {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: b.srv.s.Hostname + " Error: internal error"}
	}
	return &session{st: st}, nil
}

// logAdapter sends go-smtp's internal errors (panics, I/O errors) to the
// mail log as warnings.
type logAdapter struct{ srv *Server }

func (a logAdapter) Printf(format string, v ...any) {
	a.warn(fmt.Sprintf(format, v...))
}

func (a logAdapter) Println(v ...any) {
	a.warn(fmt.Sprintln(v...))
}

// warn keeps the log one line per event (stack traces included).
func (a logAdapter) warn(msg string) {
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
	a.srv.s.Log.Printf(a.srv.s.ServiceName, "warning: %s", msg)
}
