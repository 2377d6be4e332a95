package queue

import "time"

// State is the queue a message is in, with Postfix's names.
type State string

const (
	// Incoming: committed, not yet picked up by the scheduler.
	Incoming State = "incoming"
	// Active: the scheduler is delivering it.
	Active State = "active"
	// Deferred: waiting for its next attempt time.
	Deferred State = "deferred"
	// Hold: kept until an administrator releases it (postsuper -H).
	Hold State = "hold"
)

// RcptStatus is one recipient's delivery state inside a message.
type RcptStatus string

const (
	RcptPending  RcptStatus = ""         // not yet delivered
	RcptSent     RcptStatus = "sent"     // final: delivered
	RcptBounced  RcptStatus = "bounced"  // final: undeliverable, bounce sent if asked
	RcptDeferred RcptStatus = "deferred" // tried, will be retried
)

// Final reports whether no further delivery attempt is due for the recipient.
func (s RcptStatus) Final() bool { return s == RcptSent || s == RcptBounced }

// Recipient is one envelope recipient with its DSN parameters and state.
type Recipient struct {
	Addr     string     `json:"addr"`             // address to deliver to (after rewriting)
	OrigAddr string     `json:"orig,omitempty"`   // address as given in RCPT TO, when different
	Notify   string     `json:"notify,omitempty"` // DSN NOTIFY=, e.g. "FAILURE,DELAY"
	ORCPT    string     `json:"orcpt,omitempty"`  // DSN ORCPT=, e.g. "rfc822;u@example.com"
	Status   RcptStatus `json:"status,omitempty"`
	DSN      string     `json:"dsn,omitempty"`    // last enhanced status code, e.g. "4.4.1"
	Reason   string     `json:"reason,omitempty"` // last result text, as logged
	// Target is a local delivery target an alias expanded to: "|command" or "/file".
	Target string `json:"target,omitempty"`
}

// Message is a queue entry's metadata. The body is stored separately and
// read through the queue's Body method.
type Message struct {
	ID         string      `json:"id"`
	Sender     string      `json:"sender"` // "" is the null sender <>
	Recipients []Recipient `json:"rcpts"`
	Arrival    time.Time   `json:"arrival"`
	Size       int64       `json:"size"` // body size in bytes, headers included

	// Facts about the submission, kept for logs, Received: and DSNs.
	ClientName string `json:"client_name,omitempty"`
	ClientAddr string `json:"client_addr,omitempty"`
	Helo       string `json:"helo,omitempty"`
	Protocol   string `json:"proto,omitempty"` // SMTP, ESMTP, ESMTPS, ESMTPSA, LOCAL
	MessageID  string `json:"message_id,omitempty"`
	ENVID      string `json:"envid,omitempty"`
	RET        string `json:"ret,omitempty"`  // FULL or HDRS
	BodyType   string `json:"body,omitempty"` // 7BIT or 8BITMIME
	SMTPUTF8   bool   `json:"smtputf8,omitempty"`
	Origin     string `json:"origin,omitempty"` // "smtpd", "pickup", "bounce": which service made it

	State       State     `json:"state"`
	NextAttempt time.Time `json:"next_attempt,omitempty"` // when a deferred message is due
	Reason      string    `json:"reason,omitempty"`       // last deferral reason, shown by mailq
	Attempts    int       `json:"attempts,omitempty"`
	// Node is the cluster node that holds an active delivery of the message.
	Node string `json:"node,omitempty"`
	// Stored is where the body is in the node's body store; each node
	// fills it in when it applies the message.
	Stored BodyRef `json:"stored"`
	// Hold is set when an access table answered HOLD at submission time.
	Hold bool `json:"-"`
}
