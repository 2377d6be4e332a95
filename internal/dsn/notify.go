package dsn

import (
	"fmt"
	"strings"
)

// Kind is the sort of notification.
type Kind int

const (
	// Failure is a non-delivery report (bounce).
	Failure Kind = iota + 1
	// Delay is a delay warning; delivery is still being retried.
	Delay
	// Success is a positive delivery report (NOTIFY=SUCCESS).
	Success
)

// String returns the NOTIFY keyword for the kind.
func (k Kind) String() string {
	switch k {
	case Failure:
		return "FAILURE"
	case Delay:
		return "DELAY"
	case Success:
		return "SUCCESS"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// defaultAction is the RFC 3464 Action for a recipient of this kind.
func (k Kind) defaultAction() string {
	switch k {
	case Delay:
		return "delayed"
	case Success:
		return "delivered"
	}
	return "failed"
}

// ShouldNotify reports whether a notification of kind k goes to sender,
// given the recipient's NOTIFY parameter (RFC 3461) as received, e.g.
// "SUCCESS,FAILURE". The null sender never gets one, so bounces do not
// bounce. Without NOTIFY, failures and delays are reported but successes
// are not. NEVER suppresses everything.
func ShouldNotify(sender, notify string, k Kind) bool {
	if s := strings.TrimSpace(sender); s == "" || s == "<>" {
		return false
	}
	if strings.TrimSpace(notify) == "" {
		return k == Failure || k == Delay
	}
	want := false
	for _, kw := range strings.Split(notify, ",") {
		switch strings.ToUpper(strings.TrimSpace(kw)) {
		case "NEVER":
			return false
		case k.String():
			want = true
		}
	}
	return want
}
