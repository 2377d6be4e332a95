package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/peertest"
	"github.com/yubin-mta/yubin/queue"
)

var t0 = time.Date(2025, 11, 24, 5, 17, 55, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeSource is a node with fixed state.
type fakeSource struct {
	self    cluster.Status
	peers   map[string]cluster.Status // by address
	msgs    []queue.Message
	dests   []actors.DestStatus
	leading bool
	stats   map[string]string
}

func (f *fakeSource) Cluster() cluster.Status { return f.self }
func (f *fakeSource) PeerStatus(_ context.Context, addr string) (cluster.Status, error) {
	st, ok := f.peers[addr]
	if !ok {
		return cluster.Status{}, errors.New("connection refused")
	}
	return st, nil
}
func (f *fakeSource) Messages() []queue.Message                 { return f.msgs }
func (f *fakeSource) Destinations() ([]actors.DestStatus, bool) { return f.dests, f.leading }
func (f *fakeSource) RaftStats() map[string]string              { return f.stats }

func members() []cluster.Member {
	return []cluster.Member{
		{Name: "n1", Addr: "127.0.0.1:7001", Voter: true, Leader: true},
		{Name: "n2", Addr: "127.0.0.1:7002", Voter: true},
		{Name: "n3", Addr: "127.0.0.1:7003", Voter: true},
	}
}

// leaderSource is n1 leading a three-node cluster in which n3 does not answer.
func leaderSource(clock *fakeClock) *fakeSource {
	now := clock.Now()
	return &fakeSource{
		self: cluster.Status{Node: "n1", State: "Leader", Term: 3, Leader: "n1", CommitIndex: 120, AppliedIndex: 120, LastLogIndex: 121, Members: members()},
		peers: map[string]cluster.Status{
			"127.0.0.1:7002": {Node: "n2", State: "Follower", Term: 3, Leader: "n1", CommitIndex: 118, AppliedIndex: 110, LastContact: now.Add(-300 * time.Millisecond), Members: members()},
		},
		msgs: []queue.Message{
			{ID: "AAAAAAAAAA01", State: queue.Deferred, Arrival: now.Add(-90 * time.Minute), Recipients: []queue.Recipient{{Addr: "a@docomo.ne.jp"}, {Addr: "b@docomo.ne.jp", Status: queue.RcptSent}}},
			{ID: "AAAAAAAAAA02", State: queue.Active, Arrival: now.Add(-time.Minute), Recipients: []queue.Recipient{{Addr: "c@Example.COM"}}},
			{ID: "AAAAAAAAAA03", State: queue.Hold, Arrival: now.Add(-time.Second), Recipients: []queue.Recipient{{Addr: "d@docomo.ne.jp"}}},
		},
		dests: []actors.DestStatus{
			{Transport: "smtp", Nexthop: "example.com", Active: 2, Limit: 20, Queued: 1},
			{Transport: "docomo-smtp", Nexthop: "docomo.ne.jp", Active: 1, Limit: 1, Queued: 7, Dead: true, Reason: "connection refused"},
		},
		leading: true,
		stats:   map[string]string{"last_snapshot_index": "100", "last_snapshot_term": "2"},
	}
}

func newTestServer(t *testing.T, src Source, clock *fakeClock) (*Server, *LogStats) {
	t.Helper()
	log := NewLogStats(clock.Now)
	s, err := New(Options{Node: "n1", Version: "1.2.3", Commit: "abc1234", Source: src, Log: log, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, log
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// scrape parses /metrics the way Prometheus does.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return peertest.ParseMetrics(t, body)
}

func mustValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string, expect float64) {
	t.Helper()
	got, ok := peertest.MetricValue(fams, name, want)
	if !ok {
		t.Errorf("%s%v: missing", name, want)
		return
	}
	if got != expect {
		t.Errorf("%s%v = %v, want %v", name, want, got, expect)
	}
}

func TestMetricsFromLogAndState(t *testing.T) {
	clock := &fakeClock{now: t0}
	s, log := newTestServer(t, leaderSource(clock), clock)
	lines := [][2]string{
		{"smtpd", "connect from localhost[127.0.0.1]"},
		{"smtpd", "connect from localhost[127.0.0.1]"},
		{"smtpd", "AAAAAAAAAA01: client=localhost[127.0.0.1]"},
		{"smtpd", "NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 <u@r.example>: Relay access denied; from=<a@b> to=<u@r.example> proto=ESMTP helo=<x>"},
		{"smtpd", "disconnect from localhost[127.0.0.1] ehlo=1 quit=1 commands=2"},
		{"pickup", "AAAAAAAAAA02: uid=0 from=<root>"},
		{"smtp", "AAAAAAAAAA01: to=<a@example.com>, relay=mx[192.0.2.2]:25, delay=1.5, delays=0.1/0.2/0.3/0.9, dsn=2.0.0, status=sent (250 ok)"},
		{"smtp", "AAAAAAAAAA01: to=<b@example.com>, relay=mx[192.0.2.2]:25, delay=1.5, delays=0.1/0.2/0.3/0.9, dsn=2.0.0, status=sent (250 ok)"},
		{"docomo-smtp", "AAAAAAAAAA02: to=<c@docomo.ne.jp>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx.docomo.ne.jp[192.0.2.3]:25: Connection timed out)"},
		{"local", "AAAAAAAAAA03: to=<x@mx>, relay=local, delay=0, delays=0/0/0/0, dsn=5.1.1, status=bounced (unknown user)"},
		{"qmgr", "AAAAAAAAAA04: from=<s@x>, status=expired, returned to sender"},
		{"master", "reload -- version 1.2.3, configuration /etc/yubin"},
	}
	for _, l := range lines {
		log.Tap(l[0], l[1])
	}
	fams := scrape(t, s.Handler())
	mustValue(t, fams, "yubin_smtpd_connections_total", nil, 2)
	mustValue(t, fams, "yubin_smtpd_sessions", nil, 1)
	mustValue(t, fams, "yubin_messages_accepted_total", map[string]string{"service": "smtpd"}, 1)
	mustValue(t, fams, "yubin_messages_accepted_total", map[string]string{"service": "pickup"}, 1)
	mustValue(t, fams, "yubin_messages_rejected_total", map[string]string{"class": "relay"}, 1)
	mustValue(t, fams, "yubin_messages_rejected_total", map[string]string{"class": "dnsbl"}, 0)
	mustValue(t, fams, "yubin_messages_delivered_total", map[string]string{"transport": "smtp"}, 2)
	mustValue(t, fams, "yubin_messages_deferred_total", map[string]string{"transport": "docomo-smtp"}, 1)
	mustValue(t, fams, "yubin_messages_bounced_total", map[string]string{"transport": "local"}, 1)
	mustValue(t, fams, "yubin_messages_expired_total", nil, 1)
	mustValue(t, fams, "yubin_config_reloads_total", map[string]string{"result": "success"}, 1)
	mustValue(t, fams, "yubin_config_reloads_total", map[string]string{"result": "failure"}, 0)
	mustValue(t, fams, "yubin_delivery_delay_seconds", map[string]string{"transport": "smtp", "stage": "transmission"}, 2)
	mustValue(t, fams, "yubin_build_info", map[string]string{"version": "1.2.3", "commit": "abc1234"}, 1)
	mustValue(t, fams, "yubin_ready", nil, 1)
	mustValue(t, fams, "yubin_queue_messages", map[string]string{"state": "deferred"}, 1)
	mustValue(t, fams, "yubin_queue_messages", map[string]string{"state": "incoming"}, 0)
	mustValue(t, fams, "yubin_queue_oldest_message_age_seconds", nil, 5400)
	mustValue(t, fams, "yubin_scheduler_running", nil, 1)
	mustValue(t, fams, "yubin_destination_active_sessions", map[string]string{"transport": "smtp", "nexthop": "example.com"}, 2)
	mustValue(t, fams, "yubin_destination_concurrency_limit", map[string]string{"transport": "docomo-smtp"}, 1)
	mustValue(t, fams, "yubin_destination_queued_jobs", map[string]string{"transport": "docomo-smtp"}, 7)
	mustValue(t, fams, "yubin_destination_dead", map[string]string{"transport": "docomo-smtp"}, 1)
	mustValue(t, fams, "yubin_raft_is_leader", nil, 1)
	mustValue(t, fams, "yubin_raft_term", nil, 3)
	mustValue(t, fams, "yubin_raft_commit_index", nil, 120)
	mustValue(t, fams, "yubin_raft_members", map[string]string{"suffrage": "voter"}, 3)
	mustValue(t, fams, "yubin_raft_peer_up", map[string]string{"peer": "n2"}, 1)
	mustValue(t, fams, "yubin_raft_peer_up", map[string]string{"peer": "n3"}, 0)
	mustValue(t, fams, "yubin_raft_peer_last_contact_seconds", map[string]string{"peer": "n2"}, 0.3)
	mustValue(t, fams, "yubin_raft_peer_applied_index", map[string]string{"peer": "n2"}, 110)
	mustValue(t, fams, "yubin_raft_last_snapshot_index", nil, 100)
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s missing: Go and process collectors not registered", name)
		}
	}
}

func TestFollowerReportsNoDestinations(t *testing.T) {
	clock := &fakeClock{now: t0}
	src := &fakeSource{self: cluster.Status{Node: "n2", State: "Follower", Leader: "n1", LastContact: t0.Add(-time.Second), Members: members()}}
	s, _ := newTestServer(t, src, clock)
	fams := scrape(t, s.Handler())
	mustValue(t, fams, "yubin_scheduler_running", nil, 0)
	mustValue(t, fams, "yubin_raft_is_leader", nil, 0)
	mustValue(t, fams, "yubin_raft_last_contact_seconds", nil, 1)
	if f := fams["yubin_destination_active_sessions"]; f != nil {
		t.Errorf("a follower reports destinations: %v", f)
	}
}

func TestCheckReady(t *testing.T) {
	tests := []struct {
		name  string
		st    cluster.Status
		ready bool
		why   string
	}{
		{"leader", cluster.Status{State: "Leader", Leader: "n1"}, true, "leader"},
		{"fresh follower", cluster.Status{State: "Follower", Leader: "n1", LastContact: t0.Add(-time.Second)}, true, "following n1"},
		{"stale follower", cluster.Status{State: "Follower", Leader: "n1", LastContact: t0.Add(-6 * time.Second)}, false, "last contact with leader n1 6s ago"},
		{"follower without leader", cluster.Status{State: "Follower"}, false, "no leader known"},
		{"follower that never heard", cluster.Status{State: "Follower", Leader: "n1"}, false, "never heard from leader n1"},
		{"candidate", cluster.Status{State: "Candidate"}, false, "raft state Candidate"},
		{"shutdown", cluster.Status{State: "Shutdown"}, false, "raft state Shutdown"},
	}
	for _, tt := range tests {
		r := CheckReady(tt.st, t0, DefaultMaxLeaderContact)
		if r.Ready != tt.ready || r.Reason != tt.why {
			t.Errorf("%s: got %+v, want ready=%v %q", tt.name, r, tt.ready, tt.why)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	clock := &fakeClock{now: t0}
	src := &fakeSource{self: cluster.Status{Node: "n2", State: "Follower", Leader: "n1", LastContact: t0}}
	s, _ := newTestServer(t, src, clock)
	if code, body := get(t, s.Handler(), "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, s.Handler(), "/readyz"); code != 200 || !strings.Contains(body, "following n1") {
		t.Errorf("/readyz of a fresh follower = %d %q", code, body)
	}
	clock.Add(10 * time.Second) // the leader went silent
	if code, body := get(t, s.Handler(), "/readyz"); code != 503 || !strings.Contains(body, "last contact with leader n1 10s ago") {
		t.Errorf("/readyz of a cut-off follower = %d %q", code, body)
	}
	src.self.LastContact = clock.Now()
	s.SetDraining()
	if code, body := get(t, s.Handler(), "/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while draining = %d %q", code, body)
	}
	if code, _ := get(t, s.Handler(), "/healthz"); code != 200 {
		t.Errorf("/healthz while draining = %d", code)
	}
}

func TestStatusJSON(t *testing.T) {
	clock := &fakeClock{now: t0}
	s, log := newTestServer(t, leaderSource(clock), clock)
	for i := 0; i < 25; i++ {
		log.Tap("smtp", "AAAAAAAAAA01: to=<a@down.example>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to down.example[192.0.2.9]:25: Connection refused "+string(rune('a'+i))+")")
	}
	log.Tap("smtp", "AAAAAAAAAA01: to=<a@example.com>, relay=mx[192.0.2.2]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)")
	code, body := get(t, s.Handler(), "/status.json")
	if code != 200 {
		t.Fatalf("/status.json: %d", code)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "n1" || st.Cluster.Leader != "n1" || !st.Readiness.Ready || st.Version != "1.2.3" {
		t.Errorf("header: %+v", st)
	}
	if len(st.Members) != 3 {
		t.Fatalf("members: %+v", st.Members)
	}
	n1, n2, n3 := st.Members[0], st.Members[1], st.Members[2]
	if !n1.Self || !n1.Leader || !n1.Healthy || n1.Lag != 0 {
		t.Errorf("n1: %+v", n1)
	}
	if !n2.Reachable || !n2.Healthy || n2.Lag != 10 || n2.State != "Follower" {
		t.Errorf("n2: %+v", n2)
	}
	if n3.Reachable || n3.Healthy || !strings.Contains(n3.Error, "connection refused") {
		t.Errorf("n3: %+v", n3)
	}
	if st.Queue.Total != 3 || st.Queue.ByState["deferred"] != 1 || st.Queue.ByState["incoming"] != 0 {
		t.Errorf("queue: %+v", st.Queue)
	}
	if len(st.Queue.ByDomain) != 2 || st.Queue.ByDomain[0].Domain != "docomo.ne.jp" || st.Queue.ByDomain[0].Total != 2 || st.Queue.ByDomain[1].Domain != "example.com" {
		t.Errorf("by domain (sent recipients excluded, lower-cased): %+v", st.Queue.ByDomain)
	}
	if !strings.Contains(st.Qshape, "TOTAL") || !strings.Contains(st.Qshape, "docomo.ne.jp") {
		t.Errorf("qshape:\n%s", st.Qshape)
	}
	if !st.SchedLocal || st.Scheduler != "n1" || len(st.Dests) != 2 || st.Dests[0].Transport != "docomo-smtp" || !st.Dests[0].Dead {
		t.Errorf("destinations: %+v", st.Dests)
	}
	if len(st.Deferrals) != maxDeferrals || !strings.HasSuffix(st.Deferrals[0].Reason, "y") || st.Deferrals[0].QueueID != "AAAAAAAAAA01" {
		t.Errorf("deferrals: %d, newest %+v", len(st.Deferrals), st.Deferrals[0])
	}
	tp := st.Throughput
	if len(tp.Delivered) != bucketCount || tp.Delivered[bucketCount-1] != 1 || tp.Deferred[bucketCount-1] != 25 {
		t.Errorf("throughput: %+v", tp)
	}
}

func TestThroughputWindowMoves(t *testing.T) {
	clock := &fakeClock{now: t0}
	a := newActivity(clock.Now)
	a.add(flowDelivered)
	clock.Add(bucketWidth)
	a.add(flowDelivered)
	a.add(flowDelivered)
	tp, _ := a.snapshot()
	if got := tp.Delivered[bucketCount-2:]; got[0] != 1 || got[1] != 2 {
		t.Fatalf("last buckets %v, want [1 2]", got)
	}
	clock.Add(bucketWidth * (bucketCount - 1))
	tp, _ = a.snapshot()
	if tp.Delivered[0] != 2 || tp.Delivered[bucketCount-1] != 0 {
		t.Fatalf("after %d buckets: %v", bucketCount-1, tp.Delivered)
	}
	clock.Add(time.Hour)
	tp, _ = a.snapshot()
	for i, v := range tp.Delivered {
		if v != 0 {
			t.Fatalf("an hour later bucket %d = %d", i, v)
		}
	}
	if want := clock.Now().Add(-bucketWidth * (bucketCount - 1)).Truncate(bucketWidth); !tp.Start.Equal(want) {
		t.Errorf("start %v, want %v", tp.Start, want)
	}
}

func TestStatusPageAssets(t *testing.T) {
	clock := &fakeClock{now: t0}
	s, _ := newTestServer(t, leaderSource(clock), clock)
	for path, want := range map[string]string{
		"/":           `<script src="status.js"`,
		"/status.js":  `fetch("status.json"`,
		"/status.css": "svg#chart",
	} {
		code, body := get(t, s.Handler(), path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, body without %q", path, code, want)
		}
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status.json", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status.json = %d, want 405 (read-only)", rec.Code)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestListenAndShutdown(t *testing.T) {
	clock := &fakeClock{now: t0}
	s, _ := newTestServer(t, leaderSource(clock), clock)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz over TCP: %d", resp.StatusCode)
	}
	// A second listener on the same address is refused with the parameter's name.
	other, _ := newTestServer(t, leaderSource(clock), clock)
	if err := other.Listen(s.Addr()); err == nil || !strings.Contains(err.Error(), "yubin_metrics_address") {
		t.Errorf("second Listen: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Error("listener still answers after Shutdown")
	}
}

func TestNewNeedsSourceAndLog(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Source and Log succeeded")
	}
}
