package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A real network partition between one node and the others, while every
// process keeps running. Each node listens for the cluster on its own
// loopback address (127.0.0.11, .12, .13), but the peer list names it by a
// proxy on 127.0.0.1, so every node reaches every other one only through
// these proxies. Nodes dial from their cluster listener's IP, so a proxy
// knows which node connects and can cut one node off in both directions.
// Each node also delivers from its own address (smtp_bind_address), and
// smtp-sink's X-Client-Addr line names the node that delivered a message.

// leaseMargin is how long after the cut an isolated node may still deliver.
// It stops much sooner: a leader steps down once its Raft leader lease
// (250 ms) runs out without a majority, a follower cancels jobs after a
// heartbeat timeout (500 ms) without its leader; the rest is slack for a
// loaded machine and the 50 ms poll of the sink.
const leaseMargin = 2 * time.Second

// sinkDelay is how long the sink waits before it answers DATA, so every
// session lasts longer than leaseMargin: sessions in flight at the cut must
// be cancelled, or they would finish after it.
const sinkDelay = 3 // seconds

func TestClusterPartitionedLeader(t *testing.T)   { isolateOne(t, true) }
func TestClusterPartitionedFollower(t *testing.T) { isolateOne(t, false) }

// isolateOne cuts the leader (or a follower) off from the two other nodes
// under load, checks that it answers 4xx and stops delivering while the
// majority goes on, heals the cut and checks that it catches up and that
// nothing acknowledged was lost.
func isolateOne(t *testing.T, isolateLeader bool) {
	s := startSlowSink(t, sinkDelay)
	w := watchSink(t, s)
	nodes, ips, part := newPartitionedCluster(t, "relayhost = ["+strings.Replace(s.Addr, ":", "]:", 1)+"\n")
	startAll(t, nodes)
	lead := leader(t, nodes, func(int) bool { return true })
	v := lead // the node to isolate
	if !isolateLeader {
		v = (lead + 1) % len(nodes)
	}
	var majority []int
	for i := range nodes {
		if i != v {
			majority = append(majority, i)
		}
	}
	tag := "part-leader"
	if !isolateLeader {
		tag = "part-follower"
	}

	// Load on the majority only: the isolated node is probed separately.
	l := startPartitionLoad(t, nodes, majority, tag)
	waitFor(t, 30*time.Second, "deliveries flowing, some of them by "+ips[v], func() bool {
		from := 0
		all := w.deliveries()
		for _, d := range all {
			if d.client == ips[v] {
				from++
			}
		}
		return len(all) >= 10 && from >= 3
	})

	// Cut while the node is in a session with the sink (unless /proc does
	// not tell), so there is a delivery in flight that must be cancelled.
	var open int
	waitFor(t, 20*time.Second, ips[v]+" in a session with the sink", func() bool {
		open = openSessions(ips[v], s.Addr)
		return open != 0
	})
	isolatedAt := time.Now()
	cut := part.isolate(ips[v])
	t.Logf("isolated n%d (%s, leader: %v): closed %d of its connections; it had %d sessions open with the sink",
		v+1, ips[v], isolateLeader, cut, open)

	// The isolated node never acknowledges: probes over a few seconds. The
	// cut lasts until all have answered, so none can be answered after the
	// heal; once no leader is known, a transaction waits ten Raft heartbeat
	// timeouts (5 s) for one before its 451.
	type probe struct {
		msgID string
		r     sendResult
		err   error
		took  time.Duration
	}
	probes := make([]probe, 4)
	probesDone := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for k := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(k) * 1500 * time.Millisecond)
				p := &probes[k]
				p.msgID = fmt.Sprintf("<%s-isolated-%d@yubin.test>", tag, k)
				start := time.Now()
				p.r, p.err = smtpSend(nodes[v].SMTP, "", "probe@yubin.test", []string{"rcpt@remote.example"},
					"Message-ID: "+p.msgID+"\r\nSubject: isolated\r\n\r\nbody\r\n")
				p.took = time.Since(start)
			}()
		}
		wg.Wait()
		close(probesDone)
	}()

	if isolateLeader {
		waitFor(t, 10*time.Second, "the isolated leader to step down", func() bool {
			st, err := nodes[v].clusterStatus()
			return err == nil && st.Self.State != "Leader"
		})
		t.Logf("the isolated leader reported stepping down %.2fs after the cut", time.Since(isolatedAt).Seconds())
	}
	newLead := leader(t, nodes, func(i int) bool { return i != v })
	t.Logf("majority leader: n%d, found %.2fs after the cut", newLead+1, time.Since(isolatedAt).Seconds())

	// The majority accepts and delivers mail submitted after the cut.
	waitFor(t, 30*time.Second, "the majority to deliver messages submitted after the cut", func() bool {
		seen := map[string]bool{}
		for _, d := range w.deliveries() {
			seen[d.id] = true
		}
		n := 0
		for id, sub := range l.acked() {
			if sub.first.After(isolatedAt) && seen[id] {
				n++
			}
		}
		return n >= 10
	})
	select {
	case <-probesDone:
	case <-time.After(90 * time.Second): // smtpSend gives up after 60 s
		t.Fatal("probes of the isolated node did not finish")
	}
	for _, p := range probes {
		t.Logf("isolated node answered %s after %.1fs: %d %q, error %v", p.msgID, p.took.Seconds(), p.r.Code, p.r.Message, p.err)
		if p.err == nil && (p.r.Code < 400 || p.r.Code >= 500) {
			t.Errorf("isolated node answered %d %s to %s, want 4xx", p.r.Code, p.r.Message, p.msgID)
		}
		if p.took > 15*time.Second {
			t.Errorf("isolated node kept %s waiting %.1fs for its answer; a node without a leader should say 4xx promptly", p.msgID, p.took.Seconds())
		}
	}

	// What the isolated node delivered while cut off: only sessions that
	// were already running, nothing it could not have had before the cut,
	// and nothing once its lease was surely over.
	healAt := time.Now()
	acked := l.acked()
	var late []string
	for _, d := range w.deliveries() {
		if d.client != ips[v] || !d.seen.After(isolatedAt) || !d.seen.Before(healAt) {
			continue
		}
		after := d.seen.Sub(isolatedAt)
		late = append(late, fmt.Sprintf("%.2fs", after.Seconds()))
		if sub, ok := acked[d.id]; ok && sub.first.After(isolatedAt) {
			t.Errorf("isolated node delivered %s, first submitted %.2fs after the cut\n%s", d.id, sub.first.Sub(isolatedAt).Seconds(), messageHistory(nodes, d.id))
		}
		if after > leaseMargin {
			t.Errorf("isolated node delivered %s %.2fs after the cut, later than %v\n%s", d.id, after.Seconds(), leaseMargin, messageHistory(nodes, d.id))
		}
	}
	t.Logf("deliveries by the isolated node seen after the cut: %d %v; cut lasted %.1fs, %d connections refused", len(late), late, healAt.Sub(isolatedAt).Seconds(), part.refusals())
	if t.Failed() {
		return
	}

	// Healed: the node follows the majority's leader, catches up and
	// accepts mail again.
	st, err := nodes[newLead].raftStatus()
	if err != nil {
		t.Fatalf("status of n%d: %v", newLead+1, err)
	}
	part.heal()
	waitFor(t, 30*time.Second, fmt.Sprintf("n%d to follow n%d and apply index %d", v+1, newLead+1, st.Self.CommitIndex), func() bool {
		s, err := nodes[v].raftStatus()
		return err == nil && s.Self.State == "Follower" && s.Self.Leader == fmt.Sprintf("n%d", newLead+1) && s.Self.FSMIndex >= st.Self.CommitIndex
	})
	t.Logf("n%d caught up %.1fs after the heal", v+1, time.Since(healAt).Seconds())
	healedID := fmt.Sprintf("<%s-healed@yubin.test>", tag)
	waitFor(t, 30*time.Second, "the healed node to accept mail", func() bool {
		r, err := smtpSend(nodes[v].SMTP, "", "probe@yubin.test", []string{"rcpt@remote.example"},
			"Message-ID: "+healedID+"\r\nSubject: healed\r\n\r\nbody\r\n")
		return err == nil && r.Code == 250
	})
	l.stop()

	// Every acknowledged message arrives; duplicates stay within what can
	// be in flight (the bound of failover in cluster_test.go).
	all := &load{acked: map[string]bool{healedID: true}}
	for id := range l.acked() {
		all.acked[id] = true
	}
	got := s.waitAll(t, all, nodes)
	dups := checkDuplicates(t, got)
	t.Logf("%d acknowledged, all delivered; %d duplicate deliveries", len(all.acked), dups)
	waitQueuesEmpty(t, nodes)
}

// newPartitionedCluster configures three nodes whose cluster traffic all
// goes through the proxies of the returned partition. Node i (from 0)
// listens on 127.0.0.(11+i), named ips[i], and delivers from there too.
func newPartitionedCluster(t *testing.T, extraMain string) (nodes []*node, ips []string, part *partition) {
	t.Helper()
	const size = 3
	part = &partition{conns: map[*pipe]struct{}{}}
	t.Cleanup(part.close)
	var peers []string
	for i := range size {
		ip := fmt.Sprintf("127.0.0.%d", 11+i)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("proxy for n%d: %v", i+1, err)
		}
		target := net.JoinHostPort(ip, strconv.Itoa(freePortOn(t, ip)))
		part.start(&linkProxy{ln: ln, target: target, ip: ip})
		ips = append(ips, ip)
		peers = append(peers, fmt.Sprintf("n%d=%s", i+1, ln.Addr()))
	}
	for i := range size {
		nodes = append(nodes, newNode(t, fmt.Sprintf(`yubin_node_name = n%d
yubin_cluster_address = %s
yubin_cluster_peers = %s
yubin_cluster_secret = %s
yubin_delivery_takeover_delay = 1s
smtp_bind_address = %s
%s`, i+1, part.proxies[i].target, strings.Join(peers, ", "), clusterSecret, ips[i], extraMain), ""))
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			log, out := n.maillog(), n.output()
			t.Logf("=== %s maillog (tail):\n%s\n=== %s output (tail):\n%s", n.Dir, log[max(0, len(log)-3000):], n.Dir, out[max(0, len(out)-2000):])
		}
	})
	return nodes, ips, part
}

// startSlowSink is startSink with smtp-sink waiting delay seconds before it
// answers DATA. A session that ends before the final dot leaves no file.
func startSlowSink(t *testing.T, delay int) *sink {
	t.Helper()
	return startSinkWith(t, "-w", strconv.Itoa(delay))
}

// freePortOn returns a TCP port on ip that was free a moment ago.
func freePortOn(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// openSessions counts the established TCP connections from ip to addr
// (an IPv4 ip:port) in /proc/net/tcp; -1 when that cannot be read.
func openSessions(ip, addr string) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		return -1
	}
	// Addresses are hex, the IP in host (little-endian) byte order.
	hexIP := func(s string) string {
		v4 := net.ParseIP(s).To4()
		if v4 == nil {
			return ""
		}
		return fmt.Sprintf("%02X%02X%02X%02X", v4[3], v4[2], v4[1], v4[0])
	}
	from, to := hexIP(ip)+":", fmt.Sprintf("%s:%04X", hexIP(host), p)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasPrefix(f[1], from) && f[2] == to && f[3] == "01" {
			n++
		}
	}
	return n
}

// raftView is the part of `yubin cluster status -j` that shows catching up.
type raftView struct {
	Self struct {
		State       string `json:"state"`
		Leader      string `json:"leader"`
		CommitIndex uint64 `json:"commit_index"`
		FSMIndex    uint64 `json:"fsm_index"`
	} `json:"self"`
}

func (n *node) raftStatus() (raftView, error) {
	var st raftView
	out, stderr, err := n.tool("", "cluster", "status", "-j")
	if err != nil {
		return st, fmt.Errorf("cluster status: %v: %s", err, stderr)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("cluster status: %w", err)
	}
	return st, nil
}

// messageHistory returns every maillog line about the message with msgID,
// found through the queue IDs its cleanup lines name.
func messageHistory(nodes []*node, msgID string) string {
	var b strings.Builder
	for i, n := range nodes {
		log := n.maillog()
		ids := map[string]bool{}
		for _, line := range strings.Split(log, "\n") {
			if j := strings.Index(line, ": message-id="+msgID); j > 0 {
				f := strings.Fields(line[:j])
				ids[f[len(f)-1]] = true
			}
		}
		for _, line := range strings.Split(log, "\n") {
			for id := range ids {
				if strings.Contains(line, id+":") {
					fmt.Fprintf(&b, "n%d: %s\n", i+1, line)
					break
				}
			}
		}
	}
	return b.String()
}

// partition is the network between the nodes: one proxy per node, and a
// cut that isolates one node from all others.
type partition struct {
	mu       sync.Mutex
	proxies  []*linkProxy
	isolated string // IP of the node cut off; "" while none is
	conns    map[*pipe]struct{}
	refused  int
	closed   bool
	wg       sync.WaitGroup
}

// linkProxy forwards connections to one node's cluster listener.
type linkProxy struct {
	ln     net.Listener
	target string // the node's cluster listener, ip:port
	ip     string
}

// pipe is one proxied connection, from the node at IP from to the node at
// IP to.
type pipe struct {
	from, to       string
	client, server net.Conn
}

func (p *partition) start(px *linkProxy) {
	p.mu.Lock()
	p.proxies = append(p.proxies, px)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := px.ln.Accept()
			if err != nil {
				return // closed
			}
			p.wg.Add(1)
			go p.forward(c, px)
		}
	}()
}

// cutLocked reports whether a connection from one IP to another crosses
// the cut.
func (p *partition) cutLocked(from, to string) bool {
	return p.isolated != "" && (from == p.isolated || to == p.isolated)
}

func (p *partition) forward(c net.Conn, px *linkProxy) {
	defer p.wg.Done()
	from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	p.mu.Lock()
	refuse := p.closed || p.cutLocked(from, px.ip)
	if refuse {
		p.refused++
	}
	p.mu.Unlock()
	if refuse {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", px.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pp := &pipe{from: from, to: px.ip, client: c, server: up}
	// The cut may have come while dialling: check again under the lock.
	p.mu.Lock()
	if p.closed || p.cutLocked(pp.from, pp.to) {
		p.refused++
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[pp] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, pp)
		p.mu.Unlock()
		c.Close()
		up.Close()
	}()
	// Pass half-closes on, so either side sees the other's end.
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		closeWrite(up)
		close(done)
	}()
	io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// isolate cuts the node at ip off: new connections from it or to it are
// closed at once, and so are the ones open now. It returns how many of
// those were closed.
func (p *partition) isolate(ip string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isolated = ip
	n := 0
	for pp := range p.conns {
		if p.cutLocked(pp.from, pp.to) {
			pp.client.Close()
			pp.server.Close()
			n++
		}
	}
	return n
}

// heal lets every connection through again.
func (p *partition) heal() {
	p.mu.Lock()
	p.isolated = ""
	p.mu.Unlock()
}

func (p *partition) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *partition) close() {
	p.mu.Lock()
	p.closed = true
	for _, px := range p.proxies {
		px.ln.Close()
	}
	for pp := range p.conns {
		pp.client.Close()
		pp.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// delivery is one message file smtp-sink wrote.
type delivery struct {
	id     string    // Message-ID
	client string    // X-Client-Addr: the node that delivered it
	seen   time.Time // when the watcher first found it
}

var (
	sinkClientRE = regexp.MustCompile(`(?mi)^X-Client-Addr: (\S+)`)
	sinkMsgIDRE  = regexp.MustCompile(`(?mi)^Message-ID: (<[^>]+>)`)
)

// sinkWatch records when each of the sink's files first appeared, polling
// every 50 ms, so deliveries can be placed in time against the cut.
type sinkWatch struct {
	mu    sync.Mutex
	files map[string]delivery
}

func watchSink(t *testing.T, s *sink) *sinkWatch {
	w := &sinkWatch{files: map[string]delivery{}}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			w.scan(s.dir)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return w
}

// scan records the files not seen before whose header is complete; the
// others are read again on the next round.
func (w *sinkWatch) scan(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	now := time.Now()
	for _, f := range files {
		w.mu.Lock()
		_, known := w.files[f]
		w.mu.Unlock()
		if known {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		end := bytes.Index(b, []byte("\n\r\n"))
		if e := bytes.Index(b, []byte("\n\n")); e >= 0 && (end < 0 || e < end) {
			end = e
		}
		if end < 0 {
			continue
		}
		client, id := sinkClientRE.FindSubmatch(b[:end]), sinkMsgIDRE.FindSubmatch(b[:end])
		if client == nil || id == nil {
			continue
		}
		w.mu.Lock()
		w.files[f] = delivery{id: string(id[1]), client: string(client[1]), seen: now}
		w.mu.Unlock()
	}
}

// deliveries returns what the watcher saw so far, in the order it saw it.
func (w *sinkWatch) deliveries() []delivery {
	w.mu.Lock()
	out := make([]delivery, 0, len(w.files))
	for _, d := range w.files {
		out = append(out, d)
	}
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].seen.Before(out[j].seen) })
	return out
}

// submission is one message the load got a 250 for.
type submission struct {
	first time.Time // start of its first attempt
}

// partitionLoad sends messages to the given nodes until stopped, each one
// retried on the next node until a 250, recording when it was first tried.
type partitionLoad struct {
	mu   sync.Mutex
	subs map[string]submission
	quit chan struct{}
	wg   sync.WaitGroup
}

func startPartitionLoad(t *testing.T, nodes []*node, targets []int, tag string) *partitionLoad {
	l := &partitionLoad{subs: map[string]submission{}, quit: make(chan struct{})}
	var mu sync.Mutex
	seq := 0
	for range 2 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			deadline := time.Now().Add(3 * time.Minute)
			for time.Now().Before(deadline) {
				mu.Lock()
				seq++
				i := seq
				mu.Unlock()
				msgID := fmt.Sprintf("<%s-%d@yubin.test>", tag, i)
				first := time.Now()
				for try := 0; time.Now().Before(deadline); try++ {
					select {
					case <-l.quit:
						return
					default:
					}
					k := targets[(i+try)%len(targets)]
					r, err := smtpSend(nodes[k].SMTP, "", "load@yubin.test", []string{"rcpt@remote.example"},
						"Message-ID: "+msgID+"\r\nSubject: partition\r\n\r\nbody\r\n")
					if err == nil && r.Code == 250 {
						l.mu.Lock()
						l.subs[msgID] = submission{first: first}
						l.mu.Unlock()
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				// About 3 messages a second, well below what the slow sink
				// takes (20 sessions of 3 s), so little backlog builds up
				// while a new leader takes over.
				time.Sleep(650 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends the load and waits for the transactions in progress.
func (l *partitionLoad) stop() {
	l.mu.Lock()
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *partitionLoad) acked() map[string]submission {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]submission, len(l.subs))
	for id, s := range l.subs {
		out[id] = s
	}
	return out
}
