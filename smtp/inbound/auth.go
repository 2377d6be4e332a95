package inbound

import (
	"context"
	"errors"
	"strings"
	"time"

	gosasl "github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"

	"github.com/yubin-mta/yubin/internal/sasl"
	"github.com/yubin-mta/yubin/smtp/inbound/anvil"
)

// authOffered reports whether AUTH is available on this connection now:
// SASL is enabled and the connection is encrypted, unless plaintext AUTH
// was explicitly allowed.
func (st *connState) authOffered() bool {
	s := st.srv.s
	return s.SASL != nil && (st.tls || s.AllowPlaintextAuth && !s.TLSRequired)
}

// checkAuth runs before go-smtp handles AUTH: state, TLS policy,
// mechanism and the per-client failed-attempt limit.
func (st *connState) checkAuth(arg string) error {
	s := st.srv.s
	mech, _, _ := strings.Cut(arg, " ")
	switch {
	case s.SASL == nil:
		return reply(503, "5.5.1", "Error: authentication not enabled")
	case st.helo == "":
		return reply(503, "5.5.1", "Error: send HELO/EHLO first")
	case st.saslUser != "":
		return reply(503, "5.5.1", "Error: already authenticated")
	case st.tx != nil:
		return reply(503, "5.5.1", "Error: MAIL transaction in progress")
	case mech == "":
		return reply(501, "5.5.4", "Syntax: AUTH mechanism")
	case !st.authOffered():
		return reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
	}
	if limit := s.Limits.AuthFailureRate; limit > 0 && !st.exempt {
		if n := st.srv.anvil.Rate(st.client.Addr, anvil.AuthFailure); n >= limit {
			st.srv.logf("warning: AUTH failure rate limit exceeded: %d from %s for service %s", n, st.client.NameAddr(), s.Service)
			st.endReason = "too many failed AUTH attempts"
			return reply(421, "4.7.0", s.Hostname+" Error: too many failed AUTH attempts from "+st.client.Addr.String())
		}
	}
	for _, m := range sasl.Mechanisms {
		if strings.EqualFold(mech, m) {
			st.saslMeth = m
			return nil
		}
	}
	return reply(535, "5.7.8", "Error: authentication failed: Invalid authentication mechanism")
}

// newMechanism starts the SASL exchange that checkAuth allowed.
func (st *connState) newMechanism(mech string) (gosasl.Server, error) {
	if st.srv.s.SASL == nil {
		return nil, reply(503, "5.5.1", "Error: authentication not enabled")
	}
	m, err := sasl.NewMechanism(mech, st.verify)
	if err != nil {
		return nil, reply(535, "5.7.8", "Error: authentication failed: Invalid authentication mechanism")
	}
	return mechanism{st: st, m: m}, nil
}

// mechanism turns a malformed client response into a counted failure
// with Postfix's 535 reply.
type mechanism struct {
	st *connState
	m  sasl.Mechanism
}

func (m mechanism) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := m.m.Next(response)
	var se *smtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		return nil, true, m.st.authFailure(err)
	}
	return challenge, done, err
}

// verify checks decoded credentials; it is the only place a login is set.
func (st *connState) verify(c sasl.Credentials) error {
	srv := st.srv
	c.Client, c.Local, c.Secured = st.client.Addr, st.localAddr, st.tls
	ctx, cancel := context.WithTimeout(srv.base, srv.s.Timeout)
	defer cancel()
	user, err := srv.s.SASL.Verify(ctx, c)
	if err != nil {
		if errors.Is(err, sasl.ErrInvalidCredentials) {
			return st.authFailure(err)
		}
		srv.logf("warning: %s: SASL %s authentication problem: %v", st.client.NameAddr(), st.saslMeth, err)
		return reply(454, "4.7.0", "Temporary authentication failure")
	}
	if user == "" {
		user = c.Username
	}
	if strings.ContainsAny(user, "\x00\r\n\t") {
		// It goes into log lines and the Received: header.
		srv.logf("warning: %s: SASL %s authentication problem: verifier returned an unusable user name %q", st.client.NameAddr(), st.saslMeth, user)
		return reply(454, "4.7.0", "Temporary authentication failure")
	}
	st.saslUser = user
	return nil
}

// authFailure logs and counts a failed attempt (never the password).
func (st *connState) authFailure(err error) error {
	srv := st.srv
	srv.logf("warning: %s: SASL %s authentication failed: %v", st.client.NameAddr(), st.saslMeth, err)
	if !st.exempt && srv.s.Limits.AuthFailureRate > 0 {
		srv.anvil.Add(st.client.Addr, anvil.AuthFailure)
	}
	st.authFailed = true
	return reply(535, "5.7.8", "Error: authentication failed: authentication failure")
}

// go-smtp's own AUTH replies, reworded in onReply.
var (
	codeAuthBase64 = smtp.EnhancedCode{4, 7, 0}
	codeAuthCancel = smtp.EnhancedCode{5, 0, 0}
)

// authReply rewords go-smtp's AUTH replies as Postfix words them and
// slows down a client after a failed attempt (smtpd_error_sleep_time),
// which makes password guessing expensive.
func (st *connState) authReply(r *smtp.Reply) {
	switch {
	case r.Code == 454 && r.EnhancedCode == codeAuthBase64 && strings.Contains(strings.Join(r.Lines, " "), "base64"):
		r.Code, r.EnhancedCode, r.Lines = 501, smtp.EnhancedCode{5, 5, 2}, []string{"Cannot decode response"}
	case r.Code == 501 && r.EnhancedCode == codeAuthCancel:
		r.EnhancedCode, r.Lines = smtp.EnhancedCode{5, 7, 0}, []string{"Authentication aborted"}
	}
	if st.authFailed {
		st.authFailed = false
		st.sleepAfterAuthFailure = true
	}
}

// sleepOnError pauses before a reply after a failed AUTH, and before
// every reply once the soft error limit is reached (Postfix's tarpit).
func (st *connState) sleepOnError(r *smtp.Reply) {
	s := st.srv.s
	authSleep := st.sleepAfterAuthFailure
	st.sleepAfterAuthFailure = false
	if s.ErrorSleepTime <= 0 || r.Code == 221 || !authSleep && st.errors < s.SoftErrorLimit {
		return
	}
	select {
	case <-time.After(s.ErrorSleepTime):
	case <-st.srv.base.Done():
	}
}
