package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

func TestUnrecordedResults(t *testing.T) {
	now := t0.Add(90 * time.Second)
	job := &Job{QueueID: "AAAAAAAA00000001", Transport: "smtp", Nexthop: "example.com",
		Message: queue.Message{ID: "AAAAAAAA00000001", Arrival: t0},
		Recipients: []JobRecipient{
			{Index: 0, Addr: "plain@example.com"},
			{Index: 1, Addr: "wants-success@example.com", Notify: "SUCCESS,FAILURE"},
			{Index: 2, Addr: "bounced@example.com"},
			{Index: 3, Addr: "deferred@example.com"},
			{Index: 5, Addr: "alias-target@example.com", OrigAddr: "alias@example.com"},
		}}
	results := []Result{sent(0), sent(1), bounced(2), deferred(3), sent(4), sent(5)}
	cmd, lines := UnrecordedResults(job, results, now)
	if cmd == nil || cmd.Type != queue.CmdResult || cmd.ID != job.QueueID || !cmd.Now.Equal(now) {
		t.Fatalf("command %+v", cmd)
	}
	var got []int
	for _, r := range cmd.Results {
		if r.Status != queue.RcptSent || r.DSN != "2.0.0" {
			t.Errorf("result %+v", r)
		}
		got = append(got, r.Index)
	}
	// Index 4 is not a recipient of this job; 1, 2 and 3 need a scheduler.
	if len(got) != 2 || got[0] != 0 || got[1] != 5 {
		t.Fatalf("recorded recipients %v, want [0 5]", got)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "AAAAAAAA00000001: to=<plain@example.com>, relay=mx.example.com[192.0.2.1]:25, delay=90, delays=90/0/0.05/0.06, dsn=2.0.0, status=sent") ||
		!strings.Contains(lines[1], "to=<alias-target@example.com>, orig_to=<alias@example.com>") {
		t.Fatalf("log lines:\n%s", strings.Join(lines, "\n"))
	}

	if cmd, lines := UnrecordedResults(job, []Result{bounced(2), deferred(3)}, now); cmd != nil || lines != nil {
		t.Fatalf("nothing to record, got %+v %v", cmd, lines)
	}
}
