package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/internal/sinkdump"
)

const clusterSecret = "integration-test-cluster-secret-0123456789"

// newCluster configures size nodes that form one cluster on loopback.
func newCluster(t *testing.T, size int, extraMain, extraMaster string) []*node {
	t.Helper()
	names := make([]string, size)
	addrs := make([]string, size)
	var peers []string
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		peers = append(peers, names[i]+"="+addrs[i])
	}
	nodes := make([]*node, size)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			log := n.maillog()
			if len(log) > 3000 {
				log = log[len(log)-3000:]
			}
			out := n.output()
			if len(out) > 2000 {
				out = out[len(out)-2000:]
			}
			t.Logf("=== %s maillog (tail):\n%s\n=== %s output (tail):\n%s", n.Dir, log, n.Dir, out)
		}
	})
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf(`yubin_node_name = %s
yubin_cluster_address = %s
yubin_cluster_peers = %s
yubin_cluster_secret = %s
yubin_delivery_takeover_delay = 1s
%s`, names[i], addrs[i], strings.Join(peers, ", "), clusterSecret, extraMain), extraMaster)
	}
	return nodes
}

func startAll(t *testing.T, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		n.spawn()
	}
	for _, n := range nodes {
		n.waitReady(40 * time.Second)
	}
}

type clusterStatus struct {
	Self struct {
		Node    string `json:"node"`
		State   string `json:"state"`
		Leader  string `json:"leader"`
		Members []struct {
			Name  string `json:"name"`
			Voter bool   `json:"voter"`
		} `json:"members"`
	} `json:"self"`
}

func (n *node) clusterStatus() (clusterStatus, error) {
	var st clusterStatus
	out, stderr, err := n.tool("", "cluster", "status", "-j")
	if err != nil {
		return st, fmt.Errorf("%v: %s", err, stderr)
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// leader returns the index of the node that leads, asking the live ones.
func leader(t *testing.T, nodes []*node, alive func(int) bool) int {
	t.Helper()
	idx := -1
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for idx < 0 && time.Now().Before(deadline) {
		for i, n := range nodes {
			if !alive(i) {
				continue
			}
			st, err := n.clusterStatus()
			if err != nil {
				last = err
			} else if st.Self.State == "Leader" {
				idx = i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if idx < 0 {
		t.Fatalf("no leader found; last error: %v", last)
	}
	return idx
}

// sink is Postfix's smtp-sink dumping every message into a directory, so
// a test can count deliveries per Message-ID.
type sink struct {
	Addr string
	dir  string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	return startSinkWith(t)
}

// startSinkWith starts smtp-sink with extra options before the usual ones.
func startSinkWith(t *testing.T, opts ...string) *sink {
	t.Helper()
	bin := needTool(t, "smtp-sink")
	s := &sink{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: t.TempDir()}
	os.Chmod(s.dir, 0o777)
	os.Chmod(filepath.Dir(s.dir), 0o711) // smtp-sink writes as nobody
	args := append(opts, "-u", "nobody", "-d", s.dir+"/%H%M%S.", s.Addr, "256")
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("smtp-sink: %s", stderr.String())
		}
	})
	waitFor(t, 10*time.Second, "smtp-sink to listen", func() bool {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

// waitAll waits until every acknowledged message reached the sink; on
// timeout it names what is missing and what the nodes logged about it.
func (s *sink) waitAll(t *testing.T, l *load, nodes []*node) map[string]int {
	t.Helper()
	var got map[string]int
	deadline := time.Now().Add(120 * time.Second)
	for {
		got = s.received()
		var missing []string
		for id := range l.acked {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			for _, id := range missing[:min(3, len(missing))] {
				for _, n := range nodes {
					for _, line := range strings.Split(n.maillog(), "\n") {
						if strings.Contains(line, id) {
							t.Logf("%s: %s", n.Dir, line)
						}
					}
				}
			}
			t.Fatalf("%d of %d acknowledged messages never reached the sink, e.g. %v", len(missing), len(l.acked), missing[:min(3, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// received counts deliveries per Message-ID.
func (s *sink) received() map[string]int {
	got, _ := sinkdump.CountMessageIDs(s.dir)
	return got
}

// load sends total messages round-robin over the nodes that are alive,
// recording the Message-IDs whose 250 the client saw.
type load struct {
	mu    sync.Mutex
	acked map[string]bool
	n     atomic.Int64
}

func (l *load) run(t *testing.T, nodes []*node, alive func(int) bool, total, workers int, tag string) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			deadline := time.Now().Add(3 * time.Minute)
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				msgID := fmt.Sprintf("<%s-%d@yubin.test>", tag, i)
				for try := 0; time.Now().Before(deadline); try++ {
					k := (int(i) + try) % len(nodes)
					if !alive(k) {
						continue
					}
					r, err := smtpSend(nodes[k].SMTP, "", "load@yubin.test", []string{"rcpt@remote.example"},
						"Message-ID: "+msgID+"\r\nSubject: cluster\r\n\r\nbody\r\n")
					if err == nil && r.Code == 250 {
						l.mu.Lock()
						l.acked[msgID] = true
						l.mu.Unlock()
						l.n.Add(1)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(w)
	}
	wg.Wait()
}

// failover sends load across a cluster of size nodes, kills kill of them
// with SIGKILL mid-run (the leader first when killLeader), restarts them,
// and checks every acknowledged message reaches the sink.
func failover(t *testing.T, size, kill int, killLeader bool) {
	s := startSink(t)
	nodes := newCluster(t, size, "relayhost = ["+strings.Replace(s.Addr, ":", "]:", 1)+"\n", "")
	startAll(t, nodes)
	var mu sync.Mutex
	dead := map[int]bool{}
	alive := func(i int) bool { mu.Lock(); defer mu.Unlock(); return !dead[i] }
	l := &load{acked: map[string]bool{}}
	const total = 1500
	done := make(chan struct{})
	go func() { l.run(t, nodes, alive, total, 9, fmt.Sprintf("failover%d", size)); close(done) }()

	waitFor(t, 60*time.Second, "500 acknowledged messages", func() bool { return l.n.Load() >= 500 })
	k := leader(t, nodes, alive)
	var victims []int
	if killLeader {
		victims = append(victims, k)
	}
	for i := range nodes {
		if len(victims) < kill && i != k {
			victims = append(victims, i)
		}
	}
	before := len(s.received())
	killedAt := time.Now()
	for _, v := range victims {
		mu.Lock()
		dead[v] = true
		mu.Unlock()
		nodes[v].kill()
	}
	var resumed time.Duration
	waitFor(t, 30*time.Second, "deliveries to resume after the kill", func() bool {
		if len(s.received()) > before+5 {
			resumed = time.Since(killedAt)
			return true
		}
		return false
	})
	<-done
	for _, v := range victims {
		nodes[v].start()
		mu.Lock()
		delete(dead, v)
		mu.Unlock()
	}
	l.mu.Lock()
	acked := len(l.acked)
	l.mu.Unlock()
	got := s.waitAll(t, l, nodes)
	dups := checkDuplicates(t, got)
	t.Logf("%d nodes, killed %d (leader: %v): %d acknowledged, all delivered; %d duplicate deliveries; deliveries resumed %.1fs after the kill",
		size, len(victims), killLeader, acked, dups, resumed.Seconds())
	waitQueuesEmpty(t, nodes)
}

// checkDuplicates counts the deliveries beyond the first per Message-ID
// and fails the test when there are more than could have been in flight.
func checkDuplicates(t *testing.T, got map[string]int) int {
	t.Helper()
	dups := 0
	for _, c := range got {
		dups += max(0, c-1)
	}
	if dups > 200 {
		t.Errorf("%d duplicates: more than the deliveries that can be in flight", dups)
	}
	return dups
}

// waitQueuesEmpty waits until no node holds a message.
func waitQueuesEmpty(t *testing.T, nodes []*node) {
	t.Helper()
	waitFor(t, 30*time.Second, "empty queue on every node", func() bool {
		for _, n := range nodes {
			if len(n.queue()) != 0 {
				return false
			}
		}
		return true
	})
}

func TestClusterLeaderKillLosesNothing(t *testing.T)   { failover(t, 3, 1, true) }
func TestClusterFollowerKillLosesNothing(t *testing.T) { failover(t, 3, 1, false) }
func TestClusterTwoOfFiveKilled(t *testing.T)          { failover(t, 5, 2, true) }

// A node cut off from the majority never says 250; when the majority
// returns, it catches up.
func TestClusterMinorityAnswers4xx(t *testing.T) {
	nodes := newCluster(t, 3, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", freePort(t)), "")
	startAll(t, nodes)
	k := leader(t, nodes, func(int) bool { return true })
	lone := (k + 1) % 3
	// Freeze the two others: from the lone node's side they are gone.
	for i := range nodes {
		if i != lone {
			nodes[i].signalOnly(syscall.SIGSTOP)
		}
	}
	r, err := smtpSend(nodes[lone].SMTP, "", "a@yubin.test", []string{"b@remote.example"}, "Subject: minority\r\n\r\nx\r\n")
	for i := range nodes {
		if i != lone {
			nodes[i].signalOnly(syscall.SIGCONT)
		}
	}
	if err == nil && r.Code == 250 {
		t.Fatalf("minority node acknowledged a message: %+v", r)
	}
	if err == nil && (r.Code < 400 || r.Code >= 500) {
		t.Fatalf("minority node answered %d %s, want 4xx", r.Code, r.Message)
	}
	// Healed: the same node accepts again, and every node sees the message.
	var id string
	waitFor(t, 30*time.Second, "the healed node to accept mail", func() bool {
		r, err := smtpSend(nodes[lone].SMTP, "", "a@yubin.test", []string{"b@remote.example"}, "Subject: healed\r\n\r\nx\r\n")
		if err == nil && r.Code == 250 {
			id = r.queueID()
			return true
		}
		return false
	})
	for _, n := range nodes {
		waitFor(t, 20*time.Second, "the message on every node", func() bool {
			for _, m := range n.queue() {
				if m.ID == id {
					return true
				}
			}
			return false
		})
	}
}

// Every node restarted one after the other under load: nothing is lost.
func TestClusterRollingRestart(t *testing.T) {
	s := startSink(t)
	nodes := newCluster(t, 3, "relayhost = ["+strings.Replace(s.Addr, ":", "]:", 1)+"\n", "")
	startAll(t, nodes)
	var down atomic.Int32
	down.Store(-1)
	alive := func(i int) bool { return int(down.Load()) != i }
	l := &load{acked: map[string]bool{}}
	done := make(chan struct{})
	go func() { l.run(t, nodes, alive, 900, 6, "rolling"); close(done) }()
	for i := range nodes {
		waitFor(t, 60*time.Second, "more load", func() bool { return l.n.Load() >= int64(150*(i+1)) })
		down.Store(int32(i))
		nodes[i].stop()
		nodes[i].start()
		down.Store(-1)
	}
	<-done
	s.waitAll(t, l, nodes)
	t.Logf("rolling restart: %d acknowledged, all delivered", len(l.acked))
}

// A node whose queue file system is (as far as queue_minfree says) full
// refuses new mail with 4xx; the rest of the cluster accepts and delivers.
func TestClusterNodeOutOfSpace(t *testing.T) {
	s := startSink(t)
	nodes := newCluster(t, 3, "relayhost = ["+strings.Replace(s.Addr, ":", "]:", 1)+"\n", "")
	// The third node believes its disk is full: it needs a petabyte free.
	os.WriteFile(filepath.Join(nodes[2].Dir, "main.cf"), []byte(nodes[2].mainCF+"queue_minfree = 1125899906842624\n"), 0o644)
	startAll(t, nodes)
	r, err := smtpSend(nodes[2].SMTP, "", "a@yubin.test", []string{"b@remote.example"}, "Message-ID: <full@yubin.test>\r\n\r\nx\r\n")
	if err != nil || r.Code != 452 || !strings.Contains(r.Message, "Insufficient system storage") {
		t.Fatalf("full node answered %v %+v, want 452 4.3.1", err, r)
	}
	for i, n := range nodes[:2] {
		r, err := smtpSend(n.SMTP, "", "a@yubin.test", []string{"b@remote.example"}, fmt.Sprintf("Message-ID: <ok-%d@yubin.test>\r\n\r\nx\r\n", i))
		if err != nil || r.Code != 250 {
			t.Fatalf("node %d: %v %+v", i, err, r)
		}
	}
	waitFor(t, 30*time.Second, "both messages at the sink", func() bool {
		got := s.received()
		return got["<ok-0@yubin.test>"] == 1 && got["<ok-1@yubin.test>"] == 1 && got["<full@yubin.test>"] == 0
	})
}
