package mailbox

import (
	"fmt"
	"io"
	"time"
)

// Status is the outcome of one delivery attempt for one recipient.
type Status int

const (
	// Sent means the message is delivered; the recipient is done.
	Sent Status = iota + 1
	// Deferred means try again later (4.X.X).
	Deferred
	// Bounced means the recipient failed permanently (5.X.X).
	Bounced
)

// String returns the word Postfix logs after "status=".
func (s Status) String() string {
	switch s {
	case Sent:
		return "sent"
	case Deferred:
		return "deferred"
	case Bounced:
		return "bounced"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Delivery is one request to a final delivery agent: one message, one
// recipient. The scheduler fills it from the queue entry.
type Delivery struct {
	QueueID string
	// Sender is the envelope sender; "" is the null sender (a bounce).
	Sender string
	// Recipient is the final address, user+ext@domain, after aliasing.
	Recipient string
	// OrigRecipient is the address as given to Postfix (X-Original-To:).
	OrigRecipient string
	// Target is "" for the user's own mailbox, or what an alias or
	// .forward expanded to: "|command", "/file/name" or "/maildir/".
	Target string
	// TargetClass says where Target came from, for allow_mail_to_commands
	// and allow_mail_to_files: "alias" (the default when Target is set),
	// "forward" or "include".
	TargetClass string
	// AliasOwner names the alias (or file) that produced Target; it is
	// reported in errors and logs.
	AliasOwner string
	// AliasOwnerID, when set, is the uid/gid that Target runs with (the
	// owner of the alias database or :include: file). Nil means the
	// recipient user's rights. A root owner is replaced by default_privs.
	AliasOwnerID *Owner
	// Nexthop is the next-hop destination, for pipe(8)'s ${nexthop}.
	Nexthop string
	// Body opens the queued message (headers and body, as received). It
	// may be called more than once; each call returns a fresh reader.
	Body        func() (io.ReadCloser, error)
	ArrivalTime time.Time
}

// Result is the outcome of a Delivery, in the terms Postfix logs:
//
//	to=<Recipient>, relay=Relay, ..., dsn=DSN, status=Status (Reply)
type Result struct {
	Status Status
	// DSN is the RFC 3463 enhanced status code, e.g. "2.0.0" or "5.1.1".
	DSN string
	// Relay is the transport name, e.g. "local" or "virtual".
	Relay string
	// Reply is Postfix's wording, e.g. "delivered to mailbox" or
	// `unknown user: "joe"`.
	Reply string
	// Action is the RFC 3464 action for a success notice: "delivered" for
	// final delivery, "relayed" when a pipe command passed it on.
	Action string
	// Warning, when set, is a configuration problem that Postfix would log
	// as a separate "warning:" line (e.g. a uid below virtual_minimum_uid).
	Warning string
}

// Validate checks the fields every agent needs.
func (d *Delivery) Validate() error {
	if d == nil {
		return fmt.Errorf("nil delivery request")
	}
	if d.Recipient == "" {
		return fmt.Errorf("delivery request without recipient")
	}
	if d.Body == nil {
		return fmt.Errorf("delivery request for %s without message body", d.Recipient)
	}
	if err := checkHeaderValue("sender", d.Sender); err != nil {
		return err
	}
	if err := checkHeaderValue("recipient", d.Recipient); err != nil {
		return err
	}
	if err := checkHeaderValue("original recipient", d.OrigRecipient); err != nil {
		return err
	}
	switch d.TargetClass {
	case "", "alias", "forward", "include":
	default:
		return fmt.Errorf("unknown target class %q", d.TargetClass)
	}
	return nil
}

// checkHeaderValue refuses values that would break the headers we prepend.
func checkHeaderValue(what, v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' || v[i] == 0 {
			return fmt.Errorf("%s %q contains a control character", what, v)
		}
	}
	return nil
}

// Owner is a uid/gid pair: the owner of files created for a delivery, and
// the identity whose permissions are checked when Enforce is set.
type Owner struct {
	UID, GID int
	// Enforce opens files and directories with this owner's permissions
	// (checked on every path component) instead of the agent's own.
	Enforce bool
}

// Defer returns a temporary failure Result.
func Defer(relay, dsn, format string, args ...any) Result {
	return Result{Status: Deferred, DSN: dsn, Relay: relay, Reply: fmt.Sprintf(format, args...)}
}

// Bounce returns a permanent failure Result.
func Bounce(relay, dsn, format string, args ...any) Result {
	return Result{Status: Bounced, DSN: dsn, Relay: relay, Reply: fmt.Sprintf(format, args...)}
}

// Delivered returns a success Result with action "delivered".
func Delivered(relay, format string, args ...any) Result {
	return Result{Status: Sent, DSN: "2.0.0", Relay: relay, Reply: fmt.Sprintf(format, args...), Action: "delivered"}
}

// FromDSN returns a Deferred or Bounced Result according to the class of
// the enhanced status code: 4.X.X defers, anything else bounces.
func FromDSN(relay, dsn, reply string) Result {
	if len(dsn) > 0 && dsn[0] == '4' {
		return Result{Status: Deferred, DSN: dsn, Relay: relay, Reply: reply}
	}
	return Result{Status: Bounced, DSN: dsn, Relay: relay, Reply: reply}
}

// CopyMessage writes the queued message to w with the envelope headers
// flags select (Return-Path:, Delivered-To:, X-Original-To:, From_ line).
func (d *Delivery) CopyMessage(w io.Writer, flags CopyFlags) error {
	body, err := d.Body()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRead, err)
	}
	defer body.Close()
	return Copy(w, body, Envelope{
		Sender:        d.Sender,
		OrigRecipient: d.OrigRecipient,
		Recipient:     d.Recipient,
	}, flags)
}
