package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
)

var members3 = []string{"mx1", "mx2", "mx3"}

func picks(t *testing.T, p *nodePicker, transport, id string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		node, err := p.pick(transport, id, members3, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, node)
	}
	return out
}

func TestPickRoundRobin(t *testing.T) {
	p := newNodePicker("mx1", deliveryPolicy{preferOther: true})
	got := strings.Join(picks(t, p, "smtp", "ID1", 6), " ")
	if got != "mx1 mx2 mx3 mx1 mx2 mx3" {
		t.Fatalf("round-robin: %s", got)
	}
}

func TestPickOtherNodeOnRetry(t *testing.T) {
	p := newNodePicker("mx1", deliveryPolicy{preferOther: true})
	p.attempted("ID1", "mx2", true)
	for i, node := range picks(t, p, "smtp", "ID1", 6) {
		if node == "mx2" {
			t.Fatalf("pick %d went back to mx2, whose attempt was deferred", i)
		}
	}
	// Other messages still use mx2.
	if got := picks(t, p, "smtp", "ID2", 3); !contains(got, "mx2") {
		t.Fatalf("ID2 never on mx2: %v", got)
	}
	// A successful attempt forgets the node.
	p.attempted("ID1", "mx3", false)
	if got := picks(t, p, "smtp", "ID1", 3); !contains(got, "mx2") {
		t.Fatalf("ID1 still avoids mx2: %v", got)
	}
	// With the preference off, the deferring node stays in the rotation.
	q := newNodePicker("mx1", deliveryPolicy{})
	q.attempted("ID1", "mx2", true)
	if got := picks(t, q, "smtp", "ID1", 3); !contains(got, "mx2") {
		t.Fatalf("preference none avoided mx2: %v", got)
	}
	// The only allowed node is used even if it deferred last time.
	r := newNodePicker("mx1", deliveryPolicy{preferOther: true, restrict: map[string][]string{"local": {"mx2"}}})
	r.attempted("ID1", "mx2", true)
	if got := picks(t, r, "local", "ID1", 2); strings.Join(got, " ") != "mx2 mx2" {
		t.Fatalf("restricted retry: %v", got)
	}
}

func TestPickRestrictionsAndFailures(t *testing.T) {
	restrict, err := config.ParseTransportNodes("local=mx1 virtual=mx2,mx3")
	if err != nil {
		t.Fatal(err)
	}
	p := newNodePicker("mx1", deliveryPolicy{restrict: restrict})
	if got := strings.Join(picks(t, p, "local", "A", 3), " "); got != "mx1 mx1 mx1" {
		t.Fatalf("local: %s", got)
	}
	for _, n := range picks(t, p, "virtual", "A", 4) {
		if n == "mx1" {
			t.Fatal("virtual ran on mx1")
		}
	}
	// A node that failed is skipped for a while, then used again.
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	p.failed("mx2")
	if got := strings.Join(picks(t, p, "virtual", "A", 2), " "); got != "mx3 mx3" {
		t.Fatalf("virtual with mx2 down: %s", got)
	}
	p.failed("mx3")
	if _, err := p.pick("virtual", "A", members3, nil); err == nil {
		t.Fatal("virtual picked a node while both of its nodes are down")
	}
	now = now.Add(nodeDownFor)
	if got := picks(t, p, "virtual", "A", 2); !contains(got, "mx2") || !contains(got, "mx3") {
		t.Fatalf("after the pause: %v", got)
	}
	// This node is never taken out: it needs no connection.
	p.failed("mx1")
	if got := picks(t, p, "local", "A", 1); got[0] != "mx1" {
		t.Fatalf("local after failed(mx1): %v", got)
	}
	// Skip excludes nodes already tried for this job.
	if n, err := p.pick("smtp", "A", members3, map[string]bool{"mx1": true, "mx2": true}); err != nil || n != "mx3" {
		t.Fatalf("skip: %q %v", n, err)
	}
	// A transport bound to nodes that are not members cannot run.
	q := newNodePicker("mx1", deliveryPolicy{restrict: map[string][]string{"pipe": {"mx9"}}})
	if _, err := q.pick("pipe", "A", members3, nil); err == nil {
		t.Fatal("pipe picked a node outside its list")
	}
}

func TestPickLeaderOnly(t *testing.T) {
	p := newNodePicker("mx2", deliveryPolicy{leaderOnly: true, preferOther: true})
	p.attempted("A", "mx2", true)
	if got := strings.Join(picks(t, p, "smtp", "A", 3), " "); got != "mx2 mx2 mx2" {
		t.Fatalf("leader only: %s", got)
	}
	q := newNodePicker("mx2", deliveryPolicy{leaderOnly: true, restrict: map[string][]string{"local": {"mx1"}}})
	if _, err := q.pick("local", "A", members3, nil); err == nil {
		t.Fatal("leader only, local bound to mx1: picked a node on mx2")
	}
}

func TestParseTransportNodes(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: transport=nodes sorted, "" for an error
	}{
		{"", "{}"},
		{"local=mx1 virtual=mx1,mx2", `{"local":["mx1"],"virtual":["mx1","mx2"]}`},
		{"local=mx1, virtual=mx1, mx2", `{"local":["mx1"],"virtual":["mx1","mx2"]}`},
		{"local=mx1\n\tpipe=mx3", `{"local":["mx1"],"pipe":["mx3"]}`},
		{"mx1", ""},
		{"=mx1", ""},
		{"local=", ""},
		{"local=mx1 local=mx2", ""},
	} {
		got, err := config.ParseTransportNodes(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: accepted %v", c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		b, _ := json.Marshal(got)
		if string(b) != c.want {
			t.Errorf("%q: got %s, want %s", c.in, b, c.want)
		}
	}
}

func testJob() *actors.Job {
	msg := queue.Message{ID: "4A9C1F2D3B", Sender: "s@example.org", Size: 42,
		Recipients: []queue.Recipient{{Addr: "a@example.net"}, {Addr: "b@example.net", Notify: "SUCCESS"}, {Addr: "c@example.net"}}}
	return &actors.Job{QueueID: msg.ID, Transport: "docomo-smtp", Nexthop: "[127.0.0.1]:2525", Sender: msg.Sender, Message: msg,
		Recipients: []actors.JobRecipient{{Index: 0, Addr: "a@example.net"}, {Index: 2, Addr: "c+x@example.net", OrigAddr: "c@example.net", ORCPT: "rfc822;c@example.net"}}}
}

func TestJobRoundTrip(t *testing.T) {
	job := testJob()
	b, err := encodeJob(job)
	if err != nil {
		t.Fatal(err)
	}
	w, err := decodeJob(b)
	if err != nil {
		t.Fatal(err)
	}
	got := w.job()
	if got.QueueID != job.QueueID || got.Transport != job.Transport || got.Nexthop != job.Nexthop || got.Sender != job.Sender ||
		got.Message.Size != 42 || len(got.Message.Recipients) != 3 || got.Message.Recipients[1].Notify != "SUCCESS" {
		t.Fatalf("job: %+v", got)
	}
	if len(got.Recipients) != 2 || got.Recipients[1] != job.Recipients[1] {
		t.Fatalf("recipients: %+v", got.Recipients)
	}
	// The body never travels.
	if bytes.Contains(b, []byte("Subject")) || got.Body != nil {
		t.Fatal("body in the job")
	}
}

func TestDecodeJobRejects(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(w map[string]any)
		want   string
	}{
		{"bad queue ID", func(w map[string]any) { w["queue_id"] = "../x" }, "queue ID"},
		{"no transport", func(w map[string]any) { w["transport"] = "" }, "transport"},
		{"transport with blank", func(w map[string]any) { w["transport"] = "a b" }, "transport"},
		{"nexthop with CRLF", func(w map[string]any) { w["nexthop"] = "x\r\nRSET" }, "nexthop"},
		{"sender with NUL", func(w map[string]any) { w["sender"] = "a\x00b" }, "sender"},
		{"long sender", func(w map[string]any) { w["sender"] = strings.Repeat("a", maxAddrLen+1) }, "sender"},
		{"other message", func(w map[string]any) { w["message"].(map[string]any)["id"] = "4A9C1F2D3C" }, "message ID"},
		{"sender differs", func(w map[string]any) { w["sender"] = "t@example.org" }, "sender differs"},
		{"no recipients", func(w map[string]any) { w["rcpts"] = []any{} }, "no recipients"},
		{"index out of range", func(w map[string]any) { w["rcpts"].([]any)[1].(map[string]any)["index"] = 3 }, "out of range"},
		{"negative index", func(w map[string]any) { w["rcpts"].([]any)[0].(map[string]any)["index"] = -1 }, "out of range"},
		{"index twice", func(w map[string]any) { w["rcpts"].([]any)[1].(map[string]any)["index"] = 0 }, "twice"},
		{"empty address", func(w map[string]any) { w["rcpts"].([]any)[0].(map[string]any)["addr"] = "" }, "empty address"},
		{"address with LF", func(w map[string]any) { w["rcpts"].([]any)[0].(map[string]any)["addr"] = "a@b\n" }, "control character"},
		{"negative size", func(w map[string]any) { w["message"].(map[string]any)["size"] = -1 }, "size"},
	} {
		b, _ := encodeJob(testJob())
		var w map[string]any
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		c.change(w)
		b, _ = json.Marshal(w)
		_, err := decodeJob(b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error about %q", c.name, err, c.want)
		}
	}
	if _, err := decodeJob([]byte(`{"queue_id":`)); err == nil {
		t.Error("truncated JSON accepted")
	}
	// JSON cannot carry invalid UTF-8; the leader checks before sending.
	job := testJob()
	job.Recipients[0].Target = "|\xff"
	if _, err := encodeJob(job); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 encoded: %v", err)
	}
}

func TestDecodeResults(t *testing.T) {
	job := testJob()
	good := []actors.Result{
		{Index: 0, Status: queue.RcptSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", Relay: "mx[127.0.0.1]:25", ConnSetup: time.Millisecond, Transmission: 2 * time.Millisecond, ConnUse: 2},
		{Index: 2, Status: queue.RcptDeferred, DSN: "4.4.1", Reply: "connect refused", Relay: "none"},
	}
	b, err := encodeResults(good)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeResults(b, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != good[0] || got[1] != good[1] {
		t.Fatalf("results: %+v", got)
	}
	for _, c := range []struct{ name, in string }{
		{"unknown index", `[{"index":1,"status":"sent"}]`},
		{"index twice", `[{"index":0,"status":"sent"},{"index":0,"status":"sent"}]`},
		{"too many", `[{"index":0,"status":"sent"},{"index":2,"status":"sent"},{"index":1,"status":"sent"}]`},
		{"bad status", `[{"index":0,"status":"queued"}]`},
		{"pending status", `[{"index":0,"status":""}]`},
		{"negative time", `[{"index":0,"status":"sent","conn_setup_ns":-1}]`},
		{"reply with CR", `[{"index":0,"status":"sent","reply":"250 ok\r"}]`},
		{"not a list", `{"index":0}`},
	} {
		if _, err := decodeResults([]byte(c.in), job); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// Fewer results than recipients is fine: the scheduler defers the rest.
	if got, err := decodeResults([]byte(`[{"index":2,"status":"bounced","dsn":"5.1.1"}]`), job); err != nil || len(got) != 1 {
		t.Errorf("partial results: %v %v", got, err)
	}
}

func TestDecodeLogLines(t *testing.T) {
	if _, err := decodeLogLines([]byte(`[{"service":"smtp","msg":"4A9C1F2D3B: to=<a@b>, status=sent (250 ok)"}]`)); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		`[{"service":"","msg":"x"}]`,
		`[{"service":"smtp x","msg":"x"}]`,
		`[{"service":"smtp","msg":""}]`,
		`[{"service":"smtp","msg":"x\nJan  1 00:00:00 forged line"}]`,
		`{"service":"smtp"}`,
	} {
		if _, err := decodeLogLines([]byte(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
}

func FuzzDecodeJob(f *testing.F) {
	b, _ := encodeJob(testJob())
	f.Add(b)
	f.Add([]byte(`{"queue_id":"4A9C1F2D3B","transport":"smtp","rcpts":[{"index":0,"addr":"a"}],"message":{"id":"4A9C1F2D3B","rcpts":[{"addr":"a"}]}}`))
	f.Add([]byte(`{"queue_id":"4A9C1F2D3B","rcpts":[{"index":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeJob(b)
		if err != nil {
			return
		}
		// Whatever is accepted can be handed to a transport: indexes in
		// range and unique, no line breaks anywhere.
		job := w.job()
		seen := map[int]bool{}
		for _, r := range job.Recipients {
			if r.Index < 0 || r.Index >= len(job.Message.Recipients) || seen[r.Index] || r.Addr == "" {
				t.Fatalf("accepted recipient %+v", r)
			}
			seen[r.Index] = true
			if strings.ContainsAny(r.Addr+r.OrigAddr+r.Notify+r.ORCPT+r.Target, "\r\n\x00") {
				t.Fatalf("accepted control characters in %+v", r)
			}
		}
		if strings.ContainsAny(job.Sender+job.Nexthop+job.Transport, "\r\n\x00") {
			t.Fatalf("accepted control characters in %+v", job)
		}
		again, err := encodeJob(job)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := decodeJob(again); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// testSpreader is a spreader of a node without Raft: it sees itself only.
func testSpreader(t *testing.T, p deliveryPolicy, local map[string]actors.Transport) (*spreader, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	n := &Node{name: "mx1", log: maillog.New(&buf, "yubin", "mx1.example")}
	return newSpreader(n, local, p), &buf
}

func TestSpreadTransportRunsLocallyOrDefers(t *testing.T) {
	sp, _ := testSpreader(t, deliveryPolicy{restrict: map[string][]string{"local": {"mx2"}}}, nil)
	discard := &spreadTransport{sp: sp, local: actors.DiscardTransport{}}
	job := testJob()
	job.Transport = "smtp"
	res := discard.Deliver(context.Background(), job)
	if len(res) != 2 || res[0].Status != queue.RcptSent {
		t.Fatalf("local delivery: %+v", res)
	}
	// A transport bound to another node that is not there is deferred,
	// never run here.
	job.Transport = "local"
	res = discard.Deliver(context.Background(), job)
	if len(res) != 2 || res[0].Status != queue.RcptDeferred || !strings.Contains(res[0].Reply, "no delivery node available for transport local") {
		t.Fatalf("restricted: %+v", res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	job.Transport = "smtp"
	if res := discard.Deliver(ctx, job); res[0].Status != queue.RcptDeferred {
		t.Fatalf("cancelled: %+v", res)
	}
}

// The scheduler's log lines for a remote job go to that job's epilogue;
// all others to this node's mail log.
func TestRouteLogLines(t *testing.T) {
	sp, buf := testSpreader(t, deliveryPolicy{}, nil)
	p := &pendingLog{want: 1, full: make(chan struct{})}
	sp.pending[logKey{"4A9C1F2D3B", "a@example.net"}] = p
	sp.log.Printf("qmgr", "4A9C1F2D3B: from=<s@example.org>, size=42, nrcpt=3 (queue active)")
	sp.log.Printf("smtp", "4A9C1F2D3B: to=<a@example.net>, relay=x[127.0.0.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)")
	sp.log.Printf("smtp", "4A9C1F2D3B: to=<c@example.net>, relay=none, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (100%% busy)")
	select {
	case <-p.full:
	default:
		t.Fatal("the remote job's line did not reach its epilogue")
	}
	if len(p.lines) != 1 || p.lines[0].Service != "smtp" || !strings.Contains(p.lines[0].Msg, "to=<a@example.net>") {
		t.Fatalf("epilogue: %+v", p.lines)
	}
	local := buf.String()
	if !strings.Contains(local, "yubin/qmgr[") || !strings.Contains(local, "to=<c@example.net>") || !strings.Contains(local, "(100% busy)") {
		t.Fatalf("local log:\n%s", local)
	}
	if strings.Contains(local, "to=<a@example.net>") {
		t.Fatalf("remote job's line also logged here:\n%s", local)
	}
	if len(sp.pending) != 0 {
		t.Fatalf("pending left: %v", sp.pending)
	}
}

func TestNodeRelay(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7946": "n2[127.0.0.1]:7946",
		"[::1]:7946":     "n2[::1]:7946",
		"garbage":        "n2",
	} {
		if got := nodeRelay("n2", in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	// A job lost with its node names the node, not "none": the scheduler
	// must not take it for a dead destination.
	res := deferVia(testJob(), "4.4.2", "lost connection with delivery node n2", nodeRelay("n2", "127.0.0.1:7946"))
	if len(res) != 2 || res[1].Index != 2 || res[0].Relay == "none" || res[0].Status != queue.RcptDeferred {
		t.Fatalf("%+v", res)
	}
}
