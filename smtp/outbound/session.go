package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// session is one connection to one server.
type session struct {
	client  *smtp.Client
	g       *guardedConn
	cd      candidate
	lmtp    bool
	created time.Time
	uses    int
}

// bind ties the connection to ctx: cancellation or the context deadline
// interrupts any I/O. The returned function unties it and reports whether
// the connection is still usable (ctx did not end meanwhile).
func (s *session) bind(ctx context.Context) func() bool {
	if dl, ok := ctx.Deadline(); ok {
		s.g.setHardDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.g.setHardDeadline(time.Unix(1, 0)) })
	return func() bool {
		if !stop() {
			return false
		}
		s.g.setHardDeadline(time.Time{})
		return ctx.Err() == nil
	}
}

func (s *session) close() { _ = s.client.Close() }

// quit says goodbye politely and closes the connection.
func (s *session) quit(timeout time.Duration) {
	s.client.CommandTimeout = timeout
	if err := s.client.Quit(); err != nil {
		s.close()
	}
}

// reset ends the transaction before the session is parked (Postfix's
// "final RSET").
func (s *session) reset(timeout time.Duration) bool {
	s.client.CommandTimeout = timeout
	return s.client.Reset() == nil
}

// probe checks that a parked session still works; go-smtp's Reset forgot
// the EHLO, so EHLO is the probe and refreshes the server's extensions.
func (s *session) probe(helo string, timeout time.Duration) bool {
	s.client.CommandTimeout = timeout
	return s.client.Hello(helo) == nil
}

// connect dials cd and performs greeting, EHLO and STARTTLS as tlsLevel
// demands. On failure it returns the reason and closes what it opened.
func (c *Client) connect(ctx context.Context, cd candidate, tlsLevel string) (*session, func() bool, *failure) {
	dialer := net.Dialer{Timeout: c.opts.ConnectTimeout}
	if c.bind != nil && cd.network == "tcp" {
		dialer.LocalAddr = &net.TCPAddr{IP: c.bind}
	}
	raw, err := dialer.DialContext(ctx, cd.network, cd.dialAddr())
	if err != nil {
		reason := fmt.Sprintf("connect to %s: %s", cd.relay(), errnoText(err))
		if c.opts.Log != nil {
			// Postfix logs every failed connection, not only the last.
			c.opts.Log("%s", reason)
		}
		return nil, nil, &failure{dsn: "4.4.1", relay: "none", reason: reason}
	}
	s := &session{g: &guardedConn{Conn: raw}, cd: cd, lmtp: cd.lmtp, created: c.opts.Now()}
	if s.lmtp {
		s.client = smtp.NewClientLMTP(s.g)
	} else {
		s.client = smtp.NewClient(s.g)
	}
	unbind := s.bind(ctx)
	fail := func(f failure) (*session, func() bool, *failure) {
		unbind()
		s.close()
		return nil, nil, &f
	}

	s.client.CommandTimeout = c.opts.HeloTimeout
	if err := s.client.Hello(c.opts.HeloName); err != nil {
		return fail(c.helloFailure(s, err))
	}
	if s.lmtp || cd.network == "unix" || tlsLevel == TLSNone {
		return s, unbind, nil
	}

	required := tlsLevel != TLSMay
	if ok, _ := s.client.Extension("STARTTLS"); !ok {
		if required {
			s.quit(c.opts.QuitTimeout)
			unbind()
			return nil, nil, &failure{dsn: "4.7.4", relay: cd.relay(),
				reason: fmt.Sprintf("TLS is required, but was not offered by host %s", cd.namaddr())}
		}
		return s, unbind, nil
	}
	var verifyErr error
	cfg := c.tlsConfig(cd, tlsLevel, &verifyErr)
	s.client.CommandTimeout = c.opts.HeloTimeout
	err = s.client.StartTLS(cfg)
	if se := smtpError(err); se != nil {
		if !required { // refused: carry on in plaintext, as Postfix does at "may"
			return s, unbind, nil
		}
		s.quit(c.opts.QuitTimeout)
		unbind()
		return nil, nil, &failure{dsn: "4.7.4", relay: cd.relay(), reason: fmt.Sprintf(
			"TLS is required, but host %s refused to start TLS: %s", cd.namaddr(), replyText(se))}
	}
	if err != nil {
		switch {
		case verifyErr != nil:
			return fail(failure{dsn: "4.7.5", relay: cd.relay(), reason: fmt.Sprintf(
				"Server certificate not verified: %s: %v", cd.namaddr(), verifyErr)})
		case !required:
			// Opportunistic TLS failed: retry this server in plaintext.
			unbind()
			s.close()
			return c.connect(ctx, cd, TLSNone)
		}
		return fail(failure{dsn: "4.7.5", relay: cd.relay(), reason: fmt.Sprintf(
			"Cannot start TLS: handshake failure with %s: %v", cd.namaddr(), err)})
	}
	if err := s.client.Hello(c.opts.HeloName); err != nil {
		return fail(c.helloFailure(s, err))
	}
	return s, unbind, nil
}

// helloFailure words a failed greeting or EHLO.
func (c *Client) helloFailure(s *session, err error) failure {
	if se := smtpError(err); se != nil {
		return refusedFailure(se, s.cd.namaddr(), s.cd.relay())
	}
	stage := stageGreeting
	if s.g.hasRead() {
		stage = stageEHLO
		if s.lmtp {
			stage = stageLHLO
		}
	}
	return ioFailure(err, s.cd.namaddr(), s.cd.relay(), stage)
}

// tlsConfig builds the STARTTLS configuration for one server. Certificates
// are checked by hand so that a verification failure can be told from
// other handshake errors: at verify the name checked is the MX host name
// (smtp_tls_verify_cert_match = hostname), at secure the nexthop domain or
// a subdomain of it (smtp_tls_secure_cert_match = nexthop, dot-nexthop).
func (c *Client) tlsConfig(cd candidate, level string, verifyErr *error) *tls.Config {
	var cfg *tls.Config
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	override := cfg.ServerName
	if override == "" && net.ParseIP(cd.host) == nil {
		cfg.ServerName = cd.host // SNI
	}
	cfg.InsecureSkipVerify = true
	if level != TLSVerify && level != TLSSecure {
		return cfg
	}
	roots := cfg.RootCAs
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verifyPeer(cs, roots, level, cd, override)
		*verifyErr = err
		return err
	}
	return cfg
}

func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, level string, cd candidate, override string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no server certificate")
	}
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return fmt.Errorf("untrusted certificate: %w", err)
	}
	if override != "" {
		return leaf.VerifyHostname(override)
	}
	if level == TLSVerify {
		return leaf.VerifyHostname(cd.host)
	}
	if leaf.VerifyHostname(cd.nexthop) == nil {
		return nil
	}
	suffix := "." + strings.ToLower(cd.nexthop)
	for _, n := range leaf.DNSNames {
		n = strings.ToLower(n)
		if strings.HasSuffix(n, suffix) && !strings.HasPrefix(n, "*.") {
			return nil
		}
	}
	return fmt.Errorf("certificate does not match nexthop %s", cd.nexthop)
}

// smtpError returns err's server reply, if it is one.
func smtpError(err error) *smtp.SMTPError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return nil
}
