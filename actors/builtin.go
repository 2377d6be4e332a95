package actors

import (
	"context"
	"strings"

	"github.com/yubin-mta/yubin/queue"
)

// ErrorTransport is Postfix's error(8): every recipient fails with the
// nexthop as the reason, e.g. "error:5.1.1 mailbox unavailable" in
// transport_maps. With Retry set it is the retry service and defers instead
// of bouncing.
type ErrorTransport struct {
	Retry bool
}

// Deliver implements Transport.
func (t ErrorTransport) Deliver(_ context.Context, job *Job) []Result {
	status, dsn := queue.RcptBounced, "5.0.0"
	if t.Retry {
		status, dsn = queue.RcptDeferred, "4.0.0"
	}
	dsn, text := splitDSN(job.Nexthop, dsn)
	if text == "" {
		text = "unknown mail transport error"
	}
	out := make([]Result, len(job.Recipients))
	for i, r := range job.Recipients {
		out[i] = Result{Index: r.Index, Status: status, DSN: dsn, Reply: text, Relay: "none"}
	}
	return out
}

// DiscardTransport is Postfix's discard(8): every recipient counts as
// delivered and the nexthop is logged as the reason.
type DiscardTransport struct{}

// Deliver implements Transport.
func (DiscardTransport) Deliver(_ context.Context, job *Job) []Result {
	dsn, text := splitDSN(job.Nexthop, "2.0.0")
	if text == "" {
		text = "discarded"
	}
	out := make([]Result, len(job.Recipients))
	for i, r := range job.Recipients {
		out[i] = Result{Index: r.Index, Status: queue.RcptSent, DSN: dsn, Reply: text, Relay: "none"}
	}
	return out
}

// splitDSN separates an optional leading RFC 3463 detail code ("5.1.1 text")
// from the text, like Postfix's dsn_split; def is used when there is none.
func splitDSN(s, def string) (dsn, text string) {
	s = strings.TrimSpace(s)
	code, rest := s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		code, rest = s[:i], s[i+1:]
	}
	if validDSN(code) {
		return code, strings.TrimSpace(rest)
	}
	return def, s
}

// validDSN checks the shape class.subject.detail with class 2, 4 or 5,
// subject 1-3 digits and detail 1-3 digits.
func validDSN(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}
