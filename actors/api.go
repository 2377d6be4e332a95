package actors

import (
	"context"
	"io"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

// Applier commits a queue command through Raft. The FSM state has changed
// when Apply returns without error.
type Applier interface {
	Apply(ctx context.Context, c *queue.Command) (queue.ApplyResult, error)
}

// Queue is the read side of the replicated queue (queue.FSM).
type Queue interface {
	Get(id string) (queue.Message, bool)
	List(keep func(*queue.Message) bool) []queue.Message
	Body(id string) (io.ReadCloser, error)
}

// Route is where one recipient goes: a master.cf transport (service) name, its
// nexthop, and the final recipient address after rewriting.
type Route struct {
	Transport string
	Nexthop   string
	Recipient string // final address; empty means the queue recipient's Addr
}

// Router resolves a recipient (trivial-rewrite, transport_maps, relayhost).
type Router interface {
	Route(rcpt queue.Recipient, sender string) (Route, error)
}

// Transport delivers one job and reports one Result per job recipient. It
// must honour ctx and must not keep the Job after returning.
type Transport interface {
	Deliver(ctx context.Context, job *Job) []Result
}

// Notifier composes and enqueues delivery status notifications (RFC 3464).
// kind is "failure", "delay" or "success". It returns the queue ID of the
// notice, or "" when none was made.
type Notifier interface {
	// original opens the message as it was queued; it stays readable after
	// the queue removed the message.
	Bounce(ctx context.Context, msg queue.Message, rcpts []queue.Recipient, kind string, original func() (io.ReadCloser, error)) (newID string, err error)
}

// Notice kinds passed to Notifier.Bounce.
const (
	NoticeFailure = "failure"
	NoticeDelay   = "delay"
	NoticeSuccess = "success"
)

// Job is one delivery request: some recipients of one message that share a
// transport and nexthop.
type Job struct {
	QueueID    string
	Transport  string // master.cf service name, e.g. "smtp" or "docomo-smtp"
	Nexthop    string
	Sender     string
	Recipients []JobRecipient
	Message    queue.Message
	// Body opens the message body; each call returns a fresh reader.
	Body func() (io.ReadCloser, error)
}

// JobRecipient is one recipient of a job. Index is its position in
// Message.Recipients and is how results refer to it.
type JobRecipient struct {
	Index    int
	Addr     string // final address to deliver to
	OrigAddr string // original RCPT TO address, for orig_to= and DSNs
	Notify   string
	ORCPT    string
	Target   string // "|command" or "/file" from alias expansion
}

// Result is the outcome of a job for one recipient.
type Result struct {
	Index  int
	Status queue.RcptStatus // RcptSent, RcptBounced or RcptDeferred
	DSN    string           // enhanced status code, e.g. "2.0.0"
	// Reply is the text logged in parentheses after status=, e.g.
	// "250 2.0.0 Ok: queued as X" or "host mx[192.0.2.1] said: 550 ...".
	Reply string
	// Relay is "mx.example.com[192.0.2.1]:25", "local", or "none" when no
	// server was reached (connection-level failure).
	Relay        string
	ConnSetup    time.Duration // delays= c
	Transmission time.Duration // delays= d
	ConnUse      int           // conn_use=, logged when > 1
}

// DestStatus is a snapshot of one destination for tests and status pages.
type DestStatus struct {
	Transport string
	Nexthop   string
	Active    int // deliveries running
	// Recipients are the recipients of the deliveries running.
	Recipients int
	Limit      int  // current concurrency window
	Queued     int  // jobs waiting
	Dead       bool // delivery suspended
	Reason     string
}
