package sasl

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Dovecot verifies credentials with a Dovecot authentication server over
// its auth-client protocol (version 1), the way Postfix's
// smtpd_sasl_type = dovecot does: the handshake (VERSION, CPID; the server
// answers VERSION, MECH..., SPID, CUID, COOKIE, DONE), then one
// "AUTH id PLAIN service=smtp ... resp=BASE64" request answered by OK or
// FAIL. Each verification uses its own connection, so a Dovecot restart
// never leaves a broken shared connection behind.
type Dovecot struct {
	// Socket is the path of Dovecot's auth client socket
	// (service auth { unix_listener ... }).
	Socket string
	// Service is the service name Dovecot sees (smtpd_sasl_service, "smtp").
	Service string
	// Timeout bounds one verification when the context has no deadline.
	Timeout time.Duration
}

// NewDovecot returns a Verifier for the auth socket at path.
func NewDovecot(path string) *Dovecot {
	return &Dovecot{Socket: path, Service: "smtp", Timeout: 30 * time.Second}
}

// maxDovecotLine bounds one protocol line from the server.
const maxDovecotLine = 64 * 1024

// Verify implements Verifier.
func (d *Dovecot) Verify(ctx context.Context, c Credentials) (string, error) {
	if _, ok := ctx.Deadline(); !ok && d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", d.Socket)
	if err != nil {
		return "", fmt.Errorf("dovecot auth: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Closing the connection unblocks reads when ctx is cancelled early.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	s := &dovecotSession{r: bufio.NewReaderSize(conn, 4096), w: conn}
	if err := s.handshake(); err != nil {
		return "", s.wrap(ctx, err)
	}
	user, err := s.auth(d.request(c))
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			return "", err
		}
		return "", s.wrap(ctx, err)
	}
	if user == "" {
		user = c.Username
	}
	return user, nil
}

// request builds the AUTH line (without the trailing newline).
func (d *Dovecot) request(c Credentials) string {
	service := d.Service
	if service == "" {
		service = "smtp"
	}
	resp := base64.StdEncoding.EncodeToString([]byte(c.AuthzID + "\x00" + c.Username + "\x00" + c.Password))
	fields := []string{"AUTH", "1", "PLAIN", "service=" + tabEscape(service), "nologin"}
	if c.Local.IsValid() {
		fields = append(fields, "lip="+c.Local.Unmap().String())
	}
	if c.Client.IsValid() {
		fields = append(fields, "rip="+c.Client.Unmap().String())
	}
	if c.Secured {
		fields = append(fields, "secured")
	}
	fields = append(fields, "resp="+resp)
	return strings.Join(fields, "\t")
}

type dovecotSession struct {
	r *bufio.Reader
	w net.Conn
}

func (s *dovecotSession) wrap(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("dovecot auth: %w (%v)", ctx.Err(), err)
	}
	return fmt.Errorf("dovecot auth: %w", err)
}

func (s *dovecotSession) readLine() ([]string, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxDovecotLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxDovecotLine)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("read: %w", err)
		}
	}
	return strings.Split(strings.TrimRight(string(line), "\r\n"), "\t"), nil
}

// handshake exchanges versions and checks that PLAIN is offered.
func (s *dovecotSession) handshake() error {
	if _, err := fmt.Fprintf(s.w, "VERSION\t1\t2\nCPID\t%d\n", os.Getpid()); err != nil {
		return fmt.Errorf("write handshake: %w", err)
	}
	plain := false
	// A handshake has a handful of lines; the bound stops a server that
	// never says DONE.
	for range 1000 {
		f, err := s.readLine()
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		switch f[0] {
		case "VERSION":
			if len(f) < 3 || f[1] != "1" {
				return fmt.Errorf("handshake: unsupported protocol version %q", strings.Join(f[1:], "."))
			}
		case "MECH":
			if len(f) >= 2 && strings.EqualFold(f[1], "PLAIN") {
				plain = true
			}
		case "DONE":
			if !plain {
				return fmt.Errorf("handshake: the server does not offer PLAIN (auth_mechanisms)")
			}
			return nil
		}
		// SPID, CUID, COOKIE and unknown lines are not needed by a client
		// that only authenticates.
	}
	return fmt.Errorf("handshake: no DONE")
}

// auth sends the request and interprets OK/FAIL.
func (s *dovecotSession) auth(request string) (string, error) {
	if _, err := fmt.Fprintf(s.w, "%s\n", request); err != nil {
		return "", fmt.Errorf("write AUTH: %w", err)
	}
	for range 1000 {
		f, err := s.readLine()
		if err != nil {
			return "", fmt.Errorf("AUTH reply: %w", err)
		}
		if len(f) < 2 || f[1] != "1" {
			continue // not about our request
		}
		params := map[string]string{}
		for _, p := range f[2:] {
			k, v, _ := strings.Cut(p, "=")
			params[k] = tabUnescape(v)
		}
		switch f[0] {
		case "OK":
			return params["user"], nil
		case "FAIL":
			_, temp := params["temp"]
			if temp || params["code"] == "temp_fail" {
				return "", fmt.Errorf("temporary failure: %s", params["reason"])
			}
			if reason := params["reason"]; reason != "" {
				return "", fmt.Errorf("%w: %s", ErrInvalidCredentials, reason)
			}
			return "", ErrInvalidCredentials
		case "CONT":
			return "", fmt.Errorf("unexpected CONT for a complete PLAIN response")
		default:
			return "", fmt.Errorf("unexpected reply %q", f[0])
		}
	}
	return "", fmt.Errorf("no reply to AUTH")
}

// tabEscape and tabUnescape are Dovecot's str_tabescape: \001 introduces
// an escaped \001, TAB, LF or CR.
func tabEscape(s string) string {
	if !strings.ContainsAny(s, "\x01\t\n\r") {
		return s
	}
	r := strings.NewReplacer("\x01", "\x011", "\t", "\x01t", "\n", "\x01n", "\r", "\x01r")
	return r.Replace(s)
}

func tabUnescape(s string) string {
	if !strings.Contains(s, "\x01") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\x01' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '1':
			b.WriteByte('\x01')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
