package integration

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// sendResult is what a client saw for one message.
type sendResult struct {
	Code    int
	Message string // final reply text, e.g. "2.0.0 Ok: queued as ID"
}

// queueID returns the ID from a "queued as ID" reply.
func (r sendResult) queueID() string {
	i := strings.Index(r.Message, "queued as ")
	if r.Code != 250 || i < 0 {
		return ""
	}
	return strings.Fields(r.Message[i+len("queued as "):])[0]
}

// smtpSend runs one SMTP transaction from the given local address ("" = any)
// and returns the server's reply to the first failing command or to the
// final dot.
func smtpSend(addr, local, from string, to []string, body string) (sendResult, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return sendResult{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	tp := textproto.NewConn(conn)
	step := func(expect int, format string, args ...any) (sendResult, bool, error) {
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				return sendResult{}, false, err
			}
		}
		code, msg, err := tp.ReadResponse(expect)
		if err != nil {
			if _, ok := err.(*textproto.Error); ok {
				return sendResult{Code: code, Message: msg}, false, nil
			}
			return sendResult{}, false, err
		}
		return sendResult{Code: code, Message: msg}, true, nil
	}
	if r, ok, err := step(220, ""); !ok {
		return r, err
	}
	if r, ok, err := step(250, "EHLO client.yubin.test"); !ok {
		return r, err
	}
	if r, ok, err := step(250, "MAIL FROM:<%s>", from); !ok {
		return r, err
	}
	for _, rc := range to {
		if r, ok, err := step(250, "RCPT TO:<%s>", rc); !ok {
			return r, err
		}
	}
	if r, ok, err := step(354, "DATA"); !ok {
		return r, err
	}
	w := tp.DotWriter()
	fmt.Fprint(w, body)
	if err := w.Close(); err != nil {
		return sendResult{}, err
	}
	r, _, err := step(250, "")
	tp.PrintfLine("QUIT")
	return r, err
}
