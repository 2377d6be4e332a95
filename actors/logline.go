package actors

import (
	"strconv"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
)

// deliveryLine formats a delivery agent's per-recipient log line the way
// Postfix does:
//
//	ID: to=<rcpt>, orig_to=<orig>, relay=mx[192.0.2.1]:25, conn_use=2, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok)
//
// total is arrival → now; a, b are the time before and inside the queue
// manager; c and d come from the result.
func deliveryLine(id, to, orig string, r Result, total, a, b time.Duration) string {
	var sb strings.Builder
	sb.WriteString(id)
	sb.WriteString(": to=<")
	sb.WriteString(to)
	sb.WriteString(">")
	if orig != "" && orig != to {
		sb.WriteString(", orig_to=<")
		sb.WriteString(orig)
		sb.WriteString(">")
	}
	relay := r.Relay
	if relay == "" {
		relay = "none"
	}
	sb.WriteString(", relay=")
	sb.WriteString(relay)
	if r.ConnUse > 1 {
		sb.WriteString(", conn_use=")
		sb.WriteString(strconv.Itoa(r.ConnUse))
	}
	sb.WriteString(", delay=")
	sb.WriteString(maillog.FormatDelay(total))
	sb.WriteString(", delays=")
	sb.WriteString(maillog.Delays(a, b, r.ConnSetup, r.Transmission))
	sb.WriteString(", dsn=")
	sb.WriteString(resultDSN(r))
	sb.WriteString(", status=")
	sb.WriteString(string(r.Status))
	sb.WriteString(" (")
	sb.WriteString(r.Reply)
	sb.WriteString(")")
	return sb.String()
}

// resultDSN is the result's code, or the class default when the transport
// gave none.
func resultDSN(r Result) string {
	if r.DSN != "" {
		return r.DSN
	}
	switch r.Status {
	case queue.RcptSent:
		return "2.0.0"
	case queue.RcptBounced:
		return "5.0.0"
	}
	return "4.0.0"
}

// noticeLine is bounce(8)'s log text for a notice of the given kind.
func noticeLine(id, kind, newID string) string {
	what := "non-delivery notification"
	switch kind {
	case NoticeDelay:
		what = "delay notification"
	case NoticeSuccess:
		what = "delivery status notification"
	}
	return id + ": sender " + what + ": " + newID
}
