// Package logtap turns mail log lines into events for metrics and the status
// page, the way log-based Postfix exporters (postfix_exporter, pflogsumm) read
// Postfix's maillog. It sees exactly what an administrator's grep sees, so
// the numbers agree with the log.
package logtap

import (
	"math"
	"strconv"
	"strings"
)

// Kind says what a log line reports.
type Kind int

const (
	None         Kind = iota // a line the metrics do not count
	Connect                  // smtpd: connect from host[addr]
	Disconnect               // smtpd: disconnect from host[addr] ...
	Accepted                 // smtpd: ID: client=...; pickup: ID: uid=N from=<...>
	Rejected                 // smtpd: ID|NOQUEUE: reject: STAGE from ...: CODE X.Y.Z text
	Delivery                 // TRANSPORT: ID: to=<...>, ..., status=sent|deferred|bounced (reply)
	Expired                  // qmgr: ID: from=<...>, status=expired, returned to sender
	Reloaded                 // master: reload -- version V, configuration DIR
	ReloadFailed             // master: warning: reload failed, ...
)

// Delivery statuses as logged after status=.
const (
	StatusSent     = "sent"
	StatusDeferred = "deferred"
	StatusBounced  = "bounced"
)

// Event is one parsed log line. Fields not relevant to the Kind are empty.
type Event struct {
	Kind    Kind
	Service string // syslog service: smtpd, pickup, smtp, relay, local, ...
	QueueID string // "" for NOQUEUE and connection lines

	// Delivery.
	Recipient string
	Relay     string
	Status    string     // StatusSent, StatusDeferred or StatusBounced
	Delays    [4]float64 // delays=a/b/c/d in seconds
	HasDelays bool
	Reason    string // the text in parentheses after status=

	// Rejected.
	Stage string // CONNECT, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, ...
	Code  int    // SMTP reply code, e.g. 554
	Class string // reason class, see RejectClass
}

// Parse reads one log line's service and message (the part after
// "service[pid]: "). It never fails: a line it does not know is Kind None.
func Parse(service, msg string) Event {
	ev := Event{Service: service}
	switch {
	case strings.HasPrefix(msg, "connect from "):
		if service == "smtpd" {
			ev.Kind = Connect
		}
		return ev
	case strings.HasPrefix(msg, "disconnect from "):
		if service == "smtpd" {
			ev.Kind = Disconnect
		}
		return ev
	case service == "master" && strings.HasPrefix(msg, "reload -- "):
		ev.Kind = Reloaded
		return ev
	case service == "master" && strings.HasPrefix(msg, "warning: reload failed"):
		ev.Kind = ReloadFailed
		return ev
	}
	id, rest, ok := splitQueueID(msg)
	if !ok {
		return ev
	}
	ev.QueueID = id
	switch {
	case strings.HasPrefix(rest, "reject: ") && service == "smtpd":
		if id == "NOQUEUE" {
			ev.QueueID = ""
		}
		return parseReject(ev, rest[len("reject: "):])
	case id == "NOQUEUE":
		ev.QueueID = ""
		return ev
	case service == "smtpd" && strings.HasPrefix(rest, "client="):
		ev.Kind = Accepted
	case service == "pickup" && strings.HasPrefix(rest, "uid="):
		ev.Kind = Accepted
	case service == "qmgr" && strings.Contains(rest, ", status=expired"):
		ev.Kind = Expired
	case strings.HasPrefix(rest, "to=<"):
		return parseDelivery(ev, rest)
	}
	return ev
}

// splitQueueID splits "ID: rest". Postfix queue IDs are upper-case
// hexadecimal or, with long IDs, base-52 letters and digits; NOQUEUE is
// the placeholder before a queue file exists.
func splitQueueID(msg string) (id, rest string, ok bool) {
	i := strings.Index(msg, ": ")
	if i < 5 || i > 32 {
		return "", "", false
	}
	id = msg[:i]
	for j := 0; j < len(id); j++ {
		c := id[j]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return "", "", false
		}
	}
	return id, msg[i+2:], true
}

// parseDelivery reads a delivery agent's per-recipient line:
//
//	to=<rcpt>, orig_to=<orig>, relay=mx[192.0.2.1]:25, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok)
func parseDelivery(ev Event, rest string) Event {
	end := strings.IndexByte(rest, '>')
	i := strings.LastIndex(rest, ", status=")
	if end < 0 || i < end {
		return ev
	}
	status, reason, _ := strings.Cut(rest[i+len(", status="):], " ")
	switch status {
	case StatusSent, StatusDeferred, StatusBounced:
	default:
		return ev // e.g. status=deliverable from address verification
	}
	ev.Kind, ev.Status = Delivery, status
	ev.Recipient = rest[len("to=<"):end]
	ev.Reason = strings.TrimSuffix(strings.TrimPrefix(reason, "("), ")")
	for _, f := range strings.Split(rest[end+1:i], ", ") {
		name, value, _ := strings.Cut(f, "=")
		switch name {
		case "relay":
			ev.Relay = value
		case "delays":
			ev.Delays, ev.HasDelays = parseDelays(value)
		}
	}
	return ev
}

// parseDelays reads delays=a/b/c/d; all four parts must be non-negative
// numbers.
func parseDelays(s string) ([4]float64, bool) {
	var out [4]float64
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return out, false
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || math.IsNaN(v) || v > 1e9 {
			return [4]float64{}, false
		}
		out[i] = v
	}
	return out, true
}

// parseReject reads "RCPT from host[addr]: 554 5.7.1 <rcpt>: Relay access
// denied; from=<s> to=<r> proto=ESMTP helo=<h>".
func parseReject(ev Event, rest string) Event {
	stage, after, ok := strings.Cut(rest, " from ")
	if !ok || stage == "" || strings.ContainsAny(stage, " :") {
		return ev
	}
	_, reply, ok := strings.Cut(after, "]: ")
	if !ok {
		return ev
	}
	if len(reply) < 3 {
		return ev
	}
	code, err := strconv.Atoi(reply[:3])
	if err != nil || code < 400 || code > 599 {
		return ev
	}
	text := reply[3:]
	if i := strings.LastIndex(text, "; from=<"); i >= 0 {
		text = text[:i]
	}
	ev.Kind, ev.Stage, ev.Code = Rejected, stage, code
	ev.Reason = strings.TrimSpace(text)
	ev.Class = RejectClass(ev.Reason)
	return ev
}

// rejectClasses maps the texts of Postfix's restrictions to a small, fixed
// set of label values; first match wins, so the more specific come first.
var rejectClasses = []struct{ text, class string }{
	{"Relay access denied", "relay"},
	{"User unknown", "unknown_recipient"},
	{"blocked using", "dnsbl"},
	{"Client host rejected", "client"},
	{"Helo command rejected", "helo"},
	{"Sender address rejected", "sender"},
	{"Recipient address rejected", "recipient"},
	{"size exceeds", "size"},
	{"Too many recipients", "limit"},
	{"Must issue a STARTTLS", "tls"},
	{"Encryption required", "tls"},
	{"Authentication required", "auth"},
	{"Data command rejected", "data"},
	{"Temporary lookup failure", "lookup"},
	{"Server configuration", "config"},
}

// RejectClasses lists every value RejectClass returns.
func RejectClasses() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range rejectClasses {
		if !seen[c.class] {
			seen[c.class] = true
			out = append(out, c.class)
		}
	}
	return append(out, "other")
}

// RejectClass names the kind of restriction that produced a reject text,
// e.g. "relay" for "Relay access denied" and "other" when none matches.
func RejectClass(text string) string {
	for _, c := range rejectClasses {
		if strings.Contains(text, c.text) {
			return c.class
		}
	}
	return "other"
}
