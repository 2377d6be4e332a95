package outbound

import (
	"io"
	"time"
)

// Transport names accepted in Request.Transport.
const (
	TransportSMTP = "smtp"
	TransportLMTP = "lmtp"
)

// Request is one delivery attempt of one message to some of its recipients,
// all routed to the same (Transport, Nexthop).
type Request struct {
	Transport  string // "smtp" or "lmtp"
	Nexthop    string // Postfix nexthop syntax, see ParseNexthop
	Sender     string // envelope sender; "" is the null sender <>
	Recipients []Recipient
	// Body opens the queued message (headers and body); it may be called
	// once per attempted session. Line endings may be LF, CRLF or CR: they
	// are sent as CRLF, dot-stuffed.
	Body         func() (io.ReadCloser, error)
	Size         int64 // message size in bytes, for SIZE= and the SIZE limit check
	EightBitMIME bool  // body is 8bit: MAIL FROM gets BODY=8BITMIME
	SMTPUTF8     bool  // envelope or headers need SMTPUTF8
	RET, ENVID   string
	QueueID      string
}

// Recipient is one envelope recipient with its DSN parameters.
type Recipient struct {
	Addr   string
	Notify string // DSN NOTIFY: "NEVER" or a comma list of SUCCESS, FAILURE, DELAY
	ORCPT  string // DSN ORCPT as "type;address", e.g. "rfc822;user@example.com"
}

// Status is the outcome for one recipient.
type Status int

// Recipient outcomes.
const (
	Deferred Status = iota // try again later
	Sent                   // the remote server took responsibility
	Bounced                // permanent failure: send a DSN
)

func (s Status) String() string {
	switch s {
	case Sent:
		return "sent"
	case Bounced:
		return "bounced"
	}
	return "deferred"
}

// Result is the outcome for one recipient, in Request.Recipients order.
type Result struct {
	Addr   string
	Status Status
	DSN    string // enhanced status code, e.g. "2.0.0", "5.1.1", "4.4.1"
	// Reply is the text Postfix logs in parentheses after status=: the
	// remote's final reply for Sent, the reason for Bounced/Deferred.
	Reply string
	// Relay is the server that gave this answer ("mx.example.com[192.0.2.1]:25",
	// "host[/path/to/socket]" for LMTP over UNIX sockets), or "none".
	Relay string
}

// Outcome is the result of one Deliver call.
type Outcome struct {
	Results []Result
	// Relay is the last server a session was made with, or "none".
	Relay string
	// ConnSetup is the time until the last session was ready for the
	// transaction (DNS, connects, greeting, EHLO, STARTTLS): the "c" of
	// Postfix's delays=a/b/c/d. Transmission is the rest: "d".
	ConnSetup, Transmission time.Duration
	// ConnUse is 0 for a fresh connection and N >= 2 when a cached
	// connection was used for the Nth time (Postfix logs conn_use=N).
	ConnUse int
}
