package integration

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Delivery spread: the leader hands jobs to every live node, the limits
// stay cluster-wide, and a deferred message's next attempt runs elsewhere.

// statusLines counts a node's delivery log lines per status, and returns
// the queue IDs of each status=deferred line in order.
var statusRE = regexp.MustCompile(`\]: ([0-9A-Z]+): to=<[^>]*>,.* status=(sent|deferred|bounced) `)

func statusLines(n *node) (counts map[string]int, deferred []string) {
	counts = map[string]int{}
	for _, m := range statusRE.FindAllStringSubmatch(n.maillog(), -1) {
		counts[m[2]]++
		if m[2] == "deferred" {
			deferred = append(deferred, m[1])
		}
	}
	return counts, deferred
}

// sentIDs returns the queue IDs with a status=sent line in n's log.
func sentIDs(n *node) map[string]bool {
	out := map[string]bool{}
	for _, m := range statusRE.FindAllStringSubmatch(n.maillog(), -1) {
		if m[2] == "sent" {
			out[m[1]] = true
		}
	}
	return out
}

func appendMainCF(t *testing.T, n *node, lines string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(n.Dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// sentPerNode reports how many status=sent lines each node logged.
func sentPerNode(nodes []*node) (per []int, total int) {
	for _, n := range nodes {
		c, _ := statusLines(n)
		per = append(per, c["sent"])
		total += c["sent"]
	}
	return per, total
}

// 600 messages relayed by a three-node cluster: every node that runs a job
// logs its status line, at least two nodes deliver, nothing is lost and no
// delivery is logged twice.
func TestSpreadDeliveriesAcrossNodes(t *testing.T) {
	s := startSink(t)
	nodes := newCluster(t, 3, "relayhost = ["+strings.Replace(s.Addr, ":", "]:", 1)+"\nyubin_delivery_nodes = all\n", "")
	startAll(t, nodes)
	l := &load{acked: map[string]bool{}}
	const total = 600
	l.run(t, nodes, func(int) bool { return true }, total, 9, "spread")
	if len(l.acked) != total {
		t.Fatalf("%d of %d messages acknowledged", len(l.acked), total)
	}
	waitFor(t, 60*time.Second, "every message at the sink", func() bool {
		got := s.received()
		for id := range l.acked {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	var per []int
	waitFor(t, 20*time.Second, "a status=sent line per message", func() bool {
		var sum int
		per, sum = sentPerNode(nodes)
		return sum >= total
	})
	busy := 0
	for _, c := range per {
		if c > 0 {
			busy++
		}
	}
	t.Logf("status=sent lines per node: %v", per)
	if busy < 2 {
		t.Fatalf("deliveries not spread: status=sent lines per node %v", per)
	}
	// Each delivery is logged once, on the node that made it.
	seen := map[string]int{}
	for _, n := range nodes {
		for id := range sentIDs(n) {
			seen[id]++
		}
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("%s: status=sent logged on %d nodes", id, c)
		}
	}
	if _, sum := sentPerNode(nodes); sum != total {
		t.Errorf("%d status=sent lines for %d messages", sum, total)
	}
	waitFor(t, 30*time.Second, "empty queue on every node", func() bool {
		for _, n := range nodes {
			if len(n.queue()) != 0 {
				return false
			}
		}
		return true
	})
}

// The docomo.ne.jp case with deliveries spread: a destination limited to
// one session sees one session at a time from the whole cluster, while
// several nodes deliver to it, also across a leader kill.
func TestSpreadDocomoOneSessionAcrossLeaderKill(t *testing.T) {
	s := startConcurrencySink(t, "127.0.0.1", "--max-concurrent", "1", "--refuse", "421", "--data-delay", "0.02")
	transport := filepath.Join(t.TempDir(), "transport")
	writeFile(t, transport, fmt.Sprintf("docomo.ne.jp docomo-smtp:[127.0.0.1]:%d\n.docomo.ne.jp docomo-smtp:[127.0.0.1]:%d\n", s.Port, s.Port))
	nodes := newCluster(t, 3, "transport_maps = texthash:"+transport+"\nyubin_delivery_nodes = all\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n",
		"docomo-smtp unix - - n - 1 smtp -o smtp_destination_concurrency_limit=1 -o smtp_destination_recipient_limit=1\n")
	startAll(t, nodes)
	const total = 300
	for i := 0; i < total; i++ {
		r, err := smtpSend(nodes[i%3].SMTP, "", "shop@yubin.test", []string{fmt.Sprintf("user%d@docomo.ne.jp", i)},
			fmt.Sprintf("Message-ID: <spread-docomo-%d@yubin.test>\r\n\r\nx\r\n", i))
		if err != nil || r.Code != 250 {
			t.Fatalf("message %d: %v %+v", i, err, r)
		}
	}
	waitFor(t, 60*time.Second, "100 deliveries", func() bool { return s.stats(t).Messages >= 100 })
	k := leader(t, nodes, func(int) bool { return true })
	nodes[k].kill()
	if n := s.stats(t).Messages; n >= total {
		t.Fatalf("all %d delivered before the leader was killed: the test proves nothing", n)
	}
	waitFor(t, 90*time.Second, "all 300 delivered", func() bool { return s.stats(t).Messages >= total })
	st := s.stats(t)
	per, _ := sentPerNode(nodes)
	t.Logf("docomo spread across a leader kill: %+v; status=sent lines per node %v", st, per)
	if st.MaxAttempted != 1 || st.Refused != 0 {
		t.Fatalf("a second concurrent session was attempted: %+v", st)
	}
	if st.Recipients != st.Messages {
		t.Fatalf("more than one recipient per delivery: %+v", st)
	}
	busy := 0
	for _, c := range per {
		if c > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Fatalf("only one node delivered: status=sent lines per node %v", per)
	}
}

// refusingProxy is an SMTP relay that greets clients connecting from one
// source address with 421 and hands every other client to the sink: a
// destination that blocks one of the cluster's outgoing addresses.
type refusingProxy struct {
	Addr    string
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
	refused int
}

func startRefusingProxy(t *testing.T, sinkAddr, refuseFrom string) *refusingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &refusingProxy{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve(sinkAddr, refuseFrom)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *refusingProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *refusingProxy) serve(sinkAddr, refuseFrom string) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c, true)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if host, _, _ := net.SplitHostPort(c.RemoteAddr().String()); host == refuseFrom {
				p.mu.Lock()
				p.refused++
				p.mu.Unlock()
				io.WriteString(c, "421 4.7.0 sink.test Service not available for "+host+"\r\n")
				return
			}
			up, err := net.DialTimeout("tcp", sinkAddr, 5*time.Second)
			if err != nil {
				io.WriteString(c, "421 4.3.0 sink.test upstream unavailable\r\n")
				return
			}
			p.track(up, true)
			defer p.track(up, false)
			defer up.Close()
			up.SetDeadline(time.Now().Add(30 * time.Second))
			done := make(chan struct{})
			go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); close(done) }()
			io.Copy(c, up)
			c.Close()
			<-done
		}()
	}
}

func (p *refusingProxy) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Seed 000's rsync case: one node's outgoing address is blocked by the
// destination. A message that node deferred is delivered by another node
// on its next attempt, never retried on the same node.
func TestSpreadRetryOnAnotherNode(t *testing.T) {
	s := startSink(t)
	const bad = "127.0.0.5"
	proxy := startRefusingProxy(t, s.Addr, bad)
	nodes := newCluster(t, 3, "relayhost = ["+strings.Replace(proxy.Addr, ":", "]:", 1)+
		"\nyubin_delivery_nodes = all\nyubin_delivery_preference = other-node-on-retry\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n", "")
	sources := []string{"127.0.0.1", bad, "127.0.0.3"}
	for i, n := range nodes {
		appendMainCF(t, n, "smtp_bind_address = "+sources[i]+"\n")
	}
	startAll(t, nodes)
	const total = 30
	for i := 0; i < total; i++ {
		r, err := smtpSend(nodes[i%3].SMTP, "", "rsync@yubin.test", []string{fmt.Sprintf("backup%d@remote.example", i)},
			fmt.Sprintf("Message-ID: <spread-retry-%d@yubin.test>\r\nSubject: rsync report\r\n\r\nx\r\n", i))
		if err != nil || r.Code != 250 {
			t.Fatalf("message %d: %v %+v", i, err, r)
		}
	}
	waitFor(t, 60*time.Second, "every message at the sink", func() bool {
		got := s.received()
		for i := 0; i < total; i++ {
			if got[fmt.Sprintf("<spread-retry-%d@yubin.test>", i)] == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, 20*time.Second, "empty queue on every node", func() bool {
		for _, n := range nodes {
			if len(n.queue()) != 0 {
				return false
			}
		}
		return true
	})
	badCounts, deferredOnBad := statusLines(nodes[1])
	t.Logf("proxy refused %d sessions; the blocked node logged %v; deferred there: %d messages", proxy.refusals(), badCounts, len(deferredOnBad))
	if len(deferredOnBad) == 0 || proxy.refusals() == 0 {
		t.Fatal("the blocked node never had a turn: the test proves nothing")
	}
	if badCounts["sent"] != 0 {
		t.Fatalf("the blocked node logged %d deliveries", badCounts["sent"])
	}
	sentElsewhere := map[string]bool{}
	for i, n := range nodes {
		if i != 1 {
			for id := range sentIDs(n) {
				sentElsewhere[id] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, id := range deferredOnBad {
		if seen[id] {
			t.Errorf("%s: retried on the node that deferred it", id)
		}
		seen[id] = true
		if !sentElsewhere[id] {
			t.Errorf("%s: deferred on the blocked node, not logged as sent by another", id)
		}
	}
}
