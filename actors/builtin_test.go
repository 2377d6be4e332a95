package actors

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

func TestSplitDSN(t *testing.T) {
	tests := []struct {
		in, def, dsn, text string
	}{
		{"5.1.1 User unknown", "5.0.0", "5.1.1", "User unknown"},
		{"User unknown", "5.0.0", "5.0.0", "User unknown"},
		{"4.7.1\tgreylisted", "4.0.0", "4.7.1", "greylisted"},
		{"5.1.1", "5.0.0", "5.1.1", ""},
		{"", "2.0.0", "2.0.0", ""},
		{"  example.com  ", "2.0.0", "2.0.0", "example.com"},
		{"3.1.1 not a class", "5.0.0", "5.0.0", "3.1.1 not a class"},
		{"5.1234.1 too long", "5.0.0", "5.0.0", "5.1234.1 too long"},
		{"5.a.1 letters", "5.0.0", "5.0.0", "5.a.1 letters"},
		{"5..1 empty", "5.0.0", "5.0.0", "5..1 empty"},
		{"5.1.1.1 four parts", "5.0.0", "5.0.0", "5.1.1.1 four parts"},
	}
	for _, tt := range tests {
		dsn, text := splitDSN(tt.in, tt.def)
		if dsn != tt.dsn || text != tt.text {
			t.Errorf("splitDSN(%q) = %q, %q; want %q, %q", tt.in, dsn, text, tt.dsn, tt.text)
		}
	}
}

func FuzzSplitDSN(f *testing.F) {
	f.Add("5.1.1 User unknown")
	f.Add("4.7.1\tgreylisted")
	f.Add("example.com")
	f.Fuzz(func(t *testing.T, s string) {
		dsn, text := splitDSN(s, "5.0.0")
		if !validDSN(dsn) {
			t.Fatalf("splitDSN(%q) returned invalid code %q", s, dsn)
		}
		if len(text) > len(s) {
			t.Fatalf("text %q longer than input %q", text, s)
		}
		if dsn != "5.0.0" && !strings.HasPrefix(strings.TrimSpace(s), dsn) {
			t.Fatalf("code %q not taken from the start of %q", dsn, s)
		}
	})
}

func TestErrorAndDiscardTransports(t *testing.T) {
	job := &Job{QueueID: "ABCDEF123456", Recipients: []JobRecipient{{Index: 0, Addr: "a@x"}, {Index: 3, Addr: "b@x"}}}
	job.Nexthop = "5.1.1 mailbox unavailable"
	for i, r := range (ErrorTransport{}).Deliver(context.Background(), job) {
		want := Result{Index: job.Recipients[i].Index, Status: queue.RcptBounced, DSN: "5.1.1", Reply: "mailbox unavailable", Relay: "none"}
		if r != want {
			t.Errorf("error: %+v, want %+v", r, want)
		}
	}
	job.Nexthop = "try later"
	for _, r := range (ErrorTransport{Retry: true}).Deliver(context.Background(), job) {
		if r.Status != queue.RcptDeferred || r.DSN != "4.0.0" || r.Reply != "try later" {
			t.Errorf("retry: %+v", r)
		}
	}
	job.Nexthop = ""
	for _, r := range (DiscardTransport{}).Deliver(context.Background(), job) {
		if r.Status != queue.RcptSent || r.DSN != "2.0.0" || r.Reply != "discarded" || r.Relay != "none" {
			t.Errorf("discard: %+v", r)
		}
	}
	job.Nexthop = "example.com"
	if r := (DiscardTransport{}).Deliver(context.Background(), job); len(r) != 2 || r[1].Reply != "example.com" || r[1].Index != 3 {
		t.Errorf("discard with nexthop: %+v", r)
	}
}

func TestDeliveryLine(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		to, orig string
		r        Result
		want     string
	}{
		{"sent", "u@example.com", "", Result{Status: queue.RcptSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok: queued as XYZ",
			Relay: "mx.example.com[192.0.2.1]:25", ConnSetup: 550 * ms, Transmission: 630 * ms},
			"ID1234567890: to=<u@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=1.2, delays=0.12/0.01/0.55/0.63, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as XYZ)"},
		{"orig_to and conn_use", "u@example.com", "alias@example.org", Result{Status: queue.RcptSent, Reply: "250 Ok", Relay: "mx[192.0.2.1]:25", ConnUse: 3},
			"ID1234567890: to=<u@example.com>, orig_to=<alias@example.org>, relay=mx[192.0.2.1]:25, conn_use=3, delay=1.2, delays=0.12/0.01/0/0, dsn=2.0.0, status=sent (250 Ok)"},
		{"same orig", "u@example.com", "u@example.com", Result{Status: queue.RcptDeferred, Reply: "connect to mx: Connection refused"},
			"ID1234567890: to=<u@example.com>, relay=none, delay=1.2, delays=0.12/0.01/0/0, dsn=4.0.0, status=deferred (connect to mx: Connection refused)"},
		{"bounced", "u@example.com", "", Result{Status: queue.RcptBounced, Reply: "User unknown", Relay: "none"},
			"ID1234567890: to=<u@example.com>, relay=none, delay=1.2, delays=0.12/0.01/0/0, dsn=5.0.0, status=bounced (User unknown)"},
	}
	for _, tt := range tests {
		got := deliveryLine("ID1234567890", tt.to, tt.orig, tt.r, 1200*ms, 120*ms, 10*ms)
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
