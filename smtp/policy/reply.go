package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Reply is an SMTP reply chosen by the policy.
type Reply struct {
	Code int    // e.g. 554
	DSN  string // enhanced status code, e.g. "5.7.1"
	Text string // e.g. "<u@example.com>: Relay access denied"
}

// String formats the reply as sent: "554 5.7.1 <u@example.com>: Relay access denied".
func (r *Reply) String() string { return fmt.Sprintf("%d %s %s", r.Code, r.DSN, r.Text) }

// Temporary reports a 4xx reply.
func (r *Reply) Temporary() bool { return r.Code/100 == 4 }

// Event is something the server must log (Postfix's log_whatsup): for
// example Action "reject_warning" with the reply that warn_if_reject
// suppressed, or "hold" with "<u@x>: Recipient address triggers HOLD
// action". Action "warning" is a configuration problem.
type Event struct {
	Action string
	Text   string
}

// Result is the outcome of a check. Reply is nil when the request is
// accepted; the other fields are side effects of access(5) actions that
// apply to the whole message.
type Result struct {
	Reply    *Reply
	Hold     bool     // HOLD: keep the message in the hold queue
	Discard  bool     // DISCARD: accept and drop the message
	Redirect string   // REDIRECT user@domain: deliver only there
	Prepend  []string // PREPEND: header lines to add
	Events   []Event
}

// Client describes the SMTP client for the checks.
type Client struct {
	Addr netip.Addr
	// Name is the verified (forward-confirmed) host name, or "unknown".
	Name string
	// NameTempFail is set when Name is "unknown" because of a temporary
	// DNS failure; reject_unknown_client_hostname then defers.
	NameTempFail bool
	Helo         string // HELO/EHLO argument, "" if none was given
	SASLUser     string // authenticated user, "" if none
}

// NameAddr formats the client as Postfix logs it: "name[addr]".
func (c Client) NameAddr() string {
	name := c.Name
	if name == "" {
		name = "unknown"
	}
	return name + "[" + c.Addr.Unmap().String() + "]"
}

// Transaction is one request to check: a RCPT TO (Recipient set) or DATA.
type Transaction struct {
	Client    Client
	Sender    string // envelope sender as parsed, "" for the null sender
	Recipient string // the recipient being checked; "" at DATA unless there is exactly one
	// NumRecipients is the number of accepted recipients (at DATA).
	NumRecipients int
}

// replyClass is the "... rejected" wording of one kind of check.
type replyClass string

const (
	classClient    replyClass = "Client host"
	classHelo      replyClass = "Helo command"
	classSender    replyClass = "Sender address"
	classRecipient replyClass = "Recipient address"
	classData      replyClass = "Data command"
)

// subjectName is the <...> part of a reply for a class.
func (t *Transaction) subjectName(class replyClass) string {
	switch class {
	case classClient:
		return t.Client.NameAddr()
	case classHelo:
		return t.Client.Helo
	case classSender:
		return t.Sender
	case classRecipient:
		return t.Recipient
	}
	return "DATA"
}

// dsnFromText splits a leading enhanced status code off text when its class
// digit agrees with code ("5.7.0 go away" with 550).
func dsnFromText(code int, text, fallback string) (dsn, rest string) {
	word, after, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) == 3 && len(parts[0]) == 1 && parts[0][0] == byte('0'+code/100) && allDigits(parts[1]) && allDigits(parts[2]) &&
		len(parts[1]) <= 3 && len(parts[2]) <= 3 {
		return word, strings.TrimSpace(after)
	}
	return fallback, text
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
