package inbound

import (
	"context"
	"fmt"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/internal/sasl"
	"github.com/yubin-mta/yubin/smtp/policy"
)

// clientLookupTimeout bounds the reverse DNS lookup at connect time.
const clientLookupTimeout = 10 * time.Second

// counterOrder is the order of Postfix's "disconnect from" counters.
var counterOrder = []string{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "etrn", "quit", "unknown"}

// counted maps verbs to their counter; anything else counts as "unknown".
var counted = map[string]string{
	"HELO": "helo", "EHLO": "ehlo", "STARTTLS": "starttls", "AUTH": "auth", "MAIL": "mail",
	"RCPT": "rcpt", "DATA": "data", "RSET": "rset", "NOOP": "noop", "VRFY": "vrfy", "QUIT": "quit",
}

// junkCommands count towards smtpd_junk_command_limit.
var junkCommands = map[string]bool{"NOOP": true, "VRFY": true, "ETRN": true, "RSET": true, "HELO": true, "EHLO": true}

// counter is one "name=ok/total" pair.
type counter struct{ ok, total int }

// connState is one SMTP connection's view, shared by the hooks and the
// session. The hooks and the session run on the connection's goroutine.
type connState struct {
	srv    *Server
	conn   *smtp.Conn
	client policy.Client
	local  bool // client is on the server's own address (permit_inet_interfaces)
	// localAddr is the server address the client connected to.
	localAddr netip.Addr
	// exempt: smtpd_client_event_limit_exceptions, no anvil limits.
	exempt bool
	// anvilCounted: Connect was counted and Disconnect is owed.
	anvilCounted bool

	helo     string
	esmtp    bool
	tls      bool
	saslUser string
	saslMeth string
	// authFailed is set by a failed AUTH until its reply is written;
	// sleepAfterAuthFailure then delays that reply.
	authFailed            bool
	sleepAfterAuthFailure bool
	errors                int
	junk                  int
	counters              map[string]*counter
	verb                  string // last command verb, for the counters and log lines
	lastCmd               string // "after CMD" in lost-connection lines
	quit                  bool
	endReason             string // "timeout", "too many errors", ...

	pendingMail *mailArgs
	pendingRcpt *rcptArgs
	tx          *transaction
}

// mailArgs and rcptArgs are parsed by the command hook and consumed by
// the session (go-smtp runs in between).
type mailArgs struct {
	path   address.Path
	params address.Params
}

type rcptArgs struct {
	path   address.Path
	params address.Params
}

func (srv *Server) onConnect(c *smtp.Conn) (err error) {
	defer srv.recoverHook(c, "connect", &err)
	st := &connState{srv: srv, conn: c, counters: map[string]*counter{}}
	remote, _ := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	localAP, _ := netip.ParseAddrPort(c.Conn().LocalAddr().String())
	st.client.Addr = remote.Addr().Unmap()
	st.localAddr = localAP.Addr().Unmap()
	st.local = st.client.Addr.IsValid() && st.client.Addr == st.localAddr
	st.exempt = srv.s.Limits.Exceptions.Contains(st.client.Addr)
	ctx, cancel := context.WithTimeout(srv.base, clientLookupTimeout)
	st.client.Name, st.client.NameTempFail = policy.ClientName(ctx, srv.s.Resolver, st.client.Addr)
	cancel()
	if _, ok := c.TLSConnectionState(); ok {
		st.tls = true
	}
	srv.mu.Lock()
	srv.conns[c] = st
	srv.mu.Unlock()
	srv.logf("connect from %s", st.client.NameAddr())
	return st.checkConnectLimits()
}

func (srv *Server) onDisconnect(c *smtp.Conn) {
	defer srv.recoverHook(c, "disconnect", nil)
	srv.mu.Lock()
	st := srv.conns[c]
	delete(srv.conns, c)
	srv.mu.Unlock()
	if st == nil {
		return
	}
	if st.anvilCounted {
		srv.anvil.Disconnect(st.client.Addr)
	}
	if !st.quit {
		reason := st.endReason
		if reason == "" {
			reason = "lost connection"
		}
		after := st.lastCmd
		if after == "" {
			after = "CONNECT"
		}
		srv.logf("%s after %s from %s", reason, after, st.client.NameAddr())
	}
	srv.logf("disconnect from %s%s", st.client.NameAddr(), st.counterText())
}

// counterText formats " ehlo=1 mail=1 rcpt=0/1 ... commands=4/5".
func (st *connState) counterText() string {
	var b strings.Builder
	var all counter
	for _, name := range counterOrder {
		c := st.counters[name]
		if c == nil || c.total == 0 {
			continue
		}
		all.ok += c.ok
		all.total += c.total
		b.WriteString(" " + name + "=" + c.String())
	}
	b.WriteString(" commands=" + all.String())
	return b.String()
}

func (c counter) String() string {
	if c.ok == c.total {
		return strconv.Itoa(c.ok)
	}
	return strconv.Itoa(c.ok) + "/" + strconv.Itoa(c.total)
}

// reply builds an *smtp.SMTPError from "NNN X.Y.Z text" parts.
func reply(code int, dsn, text string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, Message: text, EnhancedCode: smtp.NoEnhancedCode}
	if dsn != "" {
		parts := strings.Split(dsn, ".")
		if len(parts) == 3 {
			a, _ := strconv.Atoi(parts[0])
			b, _ := strconv.Atoi(parts[1])
			c, _ := strconv.Atoi(parts[2])
			e.EnhancedCode = smtp.EnhancedCode{a, b, c}
		}
	}
	return e
}

func policyReply(r *policy.Reply) *smtp.SMTPError { return reply(r.Code, r.DSN, r.Text) }

func (srv *Server) errTooMany() *smtp.SMTPError {
	return reply(421, "4.7.0", srv.s.Hostname+" Error: too many errors")
}

func (srv *Server) errInternal() *smtp.SMTPError {
	return reply(421, "4.3.0", srv.s.Hostname+" Error: internal error")
}

// recoverHook keeps a bug in one session from taking the server down.
func (srv *Server) recoverHook(c *smtp.Conn, where string, errp *error) {
	if v := recover(); v != nil {
		srv.logf("warning: panic in %s hook for %s: %v %s", where, c.Conn().RemoteAddr(), v,
			strings.ReplaceAll(string(debug.Stack()), "\n", " "))
		if errp != nil {
			*errp = srv.errInternal()
		}
	}
}

func (srv *Server) logf(format string, args ...any) {
	srv.s.Log.Printf(srv.s.ServiceName, format, args...)
}

// onCommand validates every command before go-smtp runs it, so that
// state and syntax errors get Postfix's replies.
func (srv *Server) onCommand(c *smtp.Conn, line string) (err error) {
	defer srv.recoverHook(c, "command", &err)
	st := srv.state(c)
	if st == nil {
		return srv.errInternal()
	}
	if _, ok := c.TLSConnectionState(); ok && !st.tls {
		// STARTTLS completed: the client must say HELO/EHLO again.
		st.tls, st.helo, st.client.Helo, st.esmtp = true, "", "", false
	}
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	arg = strings.TrimSpace(arg)
	st.verb = verb
	st.lastCmd = verb
	name, known := counted[verb]
	if !known {
		name = "unknown"
		st.lastCmd = "UNKNOWN"
	}
	st.count(name)
	if st.errors >= srv.s.HardErrorLimit {
		st.endReason = "too many errors"
		return srv.errTooMany()
	}
	if junkCommands[verb] {
		st.junk++
		if st.junk > srv.s.JunkCommandLimit {
			st.endReason = "too many errors"
			return srv.errTooMany()
		}
	}
	switch verb {
	case "":
		return reply(500, "5.5.2", "Error: bad syntax")
	case "HELO", "EHLO":
		return st.checkHelo(verb, arg)
	case "MAIL":
		return st.checkMail(arg)
	case "RCPT":
		return st.checkRcpt(arg)
	case "DATA":
		return st.checkData(arg)
	case "RSET":
		if arg != "" {
			return reply(501, "5.5.4", "Syntax: RSET")
		}
		return nil
	case "NOOP":
		return nil
	case "QUIT":
		st.quit = true
		return reply(221, "2.0.0", "Bye")
	case "VRFY":
		return st.vrfy(arg)
	case "STARTTLS":
		return st.checkStartTLS(arg)
	case "AUTH":
		return st.checkAuth(arg)
	case "CONNECT", "GET", "POST":
		// smtpd_forbidden_commands: an HTTP proxy or browser, not SMTP.
		srv.logf("warning: non-SMTP command from %s: %s", st.client.NameAddr(), truncate(line, 100))
		st.quit = true
		return reply(221, "2.7.0", "Error: I can break rules, too. Goodbye.")
	}
	return reply(502, "5.5.2", "Error: command not recognized")
}

func (st *connState) count(name string) {
	c := st.counters[name]
	if c == nil {
		c = &counter{}
		st.counters[name] = c
	}
	c.total++
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (st *connState) checkHelo(verb, arg string) error {
	host, _, _ := strings.Cut(arg, " ")
	if host == "" {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.NoEnhancedCode, Message: "Syntax: " + verb + " hostname"}
	}
	if st.tx != nil {
		st.endTransaction()
	}
	st.helo = host
	st.client.Helo = host
	st.esmtp = verb == "EHLO"
	return nil
}

func (st *connState) checkStartTLS(arg string) error {
	switch {
	case st.srv.s.TLSConfig == nil:
		return reply(502, "5.5.1", "Error: command not implemented")
	case arg != "":
		return reply(501, "5.5.4", "Syntax: STARTTLS")
	case st.tls:
		return reply(554, "5.5.1", "Error: TLS already active")
	case st.tx != nil:
		return reply(503, "5.5.1", "Error: MAIL transaction in progress")
	}
	return nil
}

func (st *connState) vrfy(arg string) error {
	if st.srv.s.DisableVRFY {
		return reply(502, "5.5.1", "VRFY command is disabled")
	}
	if arg == "" {
		return reply(501, "5.5.4", "Syntax: VRFY address")
	}
	path, err := address.Options{AllowMissingBrackets: true, AllowUnqualified: true}.ParsePath(arg)
	if err != nil || path.Null {
		return reply(501, "5.1.3", "Bad recipient address syntax")
	}
	rcpt := path.String()
	if path.Domain == "" {
		rcpt += "@" + st.srv.s.MyOrigin
	}
	if r := st.srv.s.Policy.VerifyRecipient(rcpt); r != nil {
		return policyReply(r)
	}
	return reply(252, "2.0.0", rcpt)
}

// isSyncReply and friends recognise go-smtp's own replies in onReply.
var (
	codeTimeout  = smtp.EnhancedCode{4, 4, 2}
	codePanic    = smtp.EnhancedCode{4, 0, 0}
	codeLineLong = smtp.EnhancedCode{5, 4, 0}
	codeSync     = smtp.EnhancedCode{5, 5, 0}
)

// onReply rewords go-smtp's positive replies in Postfix's words, keeps the
// counters and error count, and slows down clients that make errors.
func (srv *Server) onReply(c *smtp.Conn, r *smtp.Reply) {
	defer srv.recoverHook(c, "reply", nil)
	st := srv.state(c)
	if st == nil {
		return
	}
	host := srv.s.Hostname
	set := func(code int, ec smtp.EnhancedCode, lines ...string) {
		r.Code, r.EnhancedCode, r.Lines = code, ec, lines
	}
	switch {
	case r.Command == "HELO" && r.Code == 250:
		set(250, smtp.NoEnhancedCode, host)
	case r.Command == "EHLO" && r.Code == 250:
		set(250, smtp.NoEnhancedCode, st.ehloLines()...)
	case r.Command == "MAIL" && r.Code == 250:
		set(250, smtp.EnhancedCode{2, 1, 0}, "Ok")
	case r.Command == "RCPT" && r.Code == 250:
		set(250, smtp.EnhancedCode{2, 1, 5}, "Ok")
	case r.Command == "DATA" && r.Code == 354:
		set(354, smtp.NoEnhancedCode, "End data with <CR><LF>.<CR><LF>")
	case (r.Command == "RSET" || r.Command == "NOOP") && r.Code == 250:
		set(250, smtp.EnhancedCode{2, 0, 0}, "Ok")
	case r.Command == "STARTTLS" && r.Code == 220:
		set(220, smtp.EnhancedCode{2, 0, 0}, "Ready to start TLS")
	case r.Command == "AUTH" && r.Code == 235:
		set(235, smtp.EnhancedCode{2, 7, 0}, "Authentication successful")
	case r.Command == "AUTH":
		st.authReply(r)
	case r.Code == 421 && r.EnhancedCode == codeTimeout:
		st.endReason = "timeout"
		set(421, codeTimeout, host+" Error: timeout exceeded")
	case r.Code == 421 && r.EnhancedCode == codePanic:
		st.endReason = "internal error"
		set(421, smtp.EnhancedCode{4, 3, 0}, host+" Error: internal error")
	case r.Code == 500 && r.EnhancedCode == codeLineLong:
		set(500, smtp.EnhancedCode{5, 5, 0}, "Error: line too long")
	case r.Code == 521:
		st.endReason = "improper use of bare newline"
		text := strings.Join(r.Lines, " ")
		r.Lines = []string{host + " " + text}
		srv.logf("warning: %s from %s", strings.TrimPrefix(text, "Error: "), st.client.NameAddr())
	case r.Code == 554 && r.EnhancedCode == codeSync:
		st.endReason = "improper command pipelining"
		srv.logf("improper command pipelining after %s from %s", st.lastCmd, st.client.NameAddr())
	}

	// Counters: a command succeeded when its final reply is 2xx.
	if name, ok := counted[r.Command]; ok && r.Code/100 == 2 {
		if c := st.counters[name]; c != nil && c.ok < c.total {
			c.ok++
		}
	}
	if r.Code >= 400 {
		st.errors++
	}
	st.sleepOnError(r)
}

// ehloLines lists the EHLO keywords in Postfix's order.
func (st *connState) ehloLines() []string {
	s := st.srv.s
	lines := []string{s.Hostname, "PIPELINING"}
	if s.MessageSizeLimit > 0 {
		lines = append(lines, fmt.Sprintf("SIZE %d", s.MessageSizeLimit))
	} else {
		lines = append(lines, "SIZE")
	}
	if !s.DisableVRFY {
		lines = append(lines, "VRFY")
	}
	if s.TLSConfig != nil && !st.tls {
		lines = append(lines, "STARTTLS")
	}
	if st.authOffered() {
		lines = append(lines, "AUTH "+strings.Join(sasl.Mechanisms, " "))
	}
	lines = append(lines, "ENHANCEDSTATUSCODES", "8BITMIME", "DSN")
	if !s.DisableSMTPUTF8 {
		lines = append(lines, "SMTPUTF8")
	}
	return lines
}
