package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/yubin-mta/yubin/queue"
)

const testSecret = "test cluster secret, 32 bytes.."

// Generous bounds: they only matter when something is broken.
const (
	waitLong  = 20 * time.Second
	pollEvery = 20 * time.Millisecond
)

func testLogger() hclog.Logger {
	if os.Getenv("YUBIN_TEST_RAFT_LOG") != "" {
		return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Debug, Output: os.Stderr})
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Off, Output: io.Discard})
}

// testNode is one in-process node: its directories survive restarts.
type testNode struct {
	t      *testing.T
	name   string
	addr   string
	dir    string
	secret string
	peers  []Peer
	tune   func(*Config)
	fsm    *queue.FSM
	node   *Node
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// listenAgain binds addr once more after a restart; the port was ours a
// moment ago, so only a short wait for the kernel can be needed.
func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("listen again on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tn *testNode) config(ln net.Listener) Config {
	cfg := Config{
		NodeName: tn.name,
		Dir:      filepath.Join(tn.dir, "raft"),
		Listener: ln,
		Peers:    tn.peers,
		Secret:   tn.secret,
		Logger:   testLogger(),
		// The production defaults (500ms): fast enough, and no spurious
		// elections on a loaded test machine.
	}
	if tn.tune != nil {
		tn.tune(&cfg)
	}
	return cfg
}

// start (re)starts the node on its address with a fresh in-memory FSM over
// its queue directory, as a restarted process would.
func (tn *testNode) start(ln net.Listener) {
	t := tn.t
	t.Helper()
	if ln == nil {
		ln = listenAgain(t, tn.addr)
	}
	fsm, err := queue.NewFSM(filepath.Join(tn.dir, "queue"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(tn.config(ln), fsm)
	if err != nil {
		t.Fatalf("start %s: %v", tn.name, err)
	}
	tn.fsm, tn.node = fsm, n
}

func (tn *testNode) stop() {
	tn.t.Helper()
	if tn.node == nil {
		return
	}
	if err := tn.node.Shutdown(); err != nil {
		tn.t.Errorf("shutdown %s: %v", tn.name, err)
	}
	tn.node = nil
}

type testCluster struct {
	t     *testing.T
	nodes []*testNode
}

// newCluster starts n nodes on loopback that bootstrap together.
func newCluster(t *testing.T, n int, tune func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	lns := make([]net.Listener, n)
	var peers []Peer
	for i := range n {
		lns[i] = listenLoopback(t)
		peers = append(peers, Peer{Name: fmt.Sprintf("node%d", i+1), Addr: lns[i].Addr().String()})
	}
	for i := range n {
		tn := &testNode{t: t, name: peers[i].Name, addr: peers[i].Addr, dir: t.TempDir(), secret: testSecret, peers: peers, tune: tune}
		c.nodes = append(c.nodes, tn)
	}
	t.Cleanup(c.stop)
	for i, tn := range c.nodes {
		tn.start(lns[i])
	}
	return c
}

func (c *testCluster) stop() {
	for _, tn := range c.nodes {
		tn.stop()
	}
}

// running returns the nodes that are up.
func (c *testCluster) running() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.node != nil {
			out = append(out, tn)
		}
	}
	return out
}

// leader waits until exactly one running node leads and every running node
// agrees on it.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	var last string
	ok := poll(waitLong, func() bool {
		var lead *testNode
		for _, tn := range c.running() {
			if tn.node.IsLeader() {
				if lead != nil {
					last = "two leaders"
					return false
				}
				lead = tn
			}
		}
		if lead == nil {
			last = "no leader"
			return false
		}
		for _, tn := range c.running() {
			if _, id := tn.node.Raft().LeaderWithID(); string(id) != lead.name {
				last = fmt.Sprintf("%s sees leader %q, not %s", tn.name, id, lead.name)
				return false
			}
		}
		return true
	})
	if !ok {
		c.t.Fatalf("no agreed leader: %s", last)
	}
	for _, tn := range c.running() {
		if tn.node.IsLeader() {
			return tn
		}
	}
	c.t.Fatal("the agreed leader stepped down at once")
	return nil
}

// follower returns a running node that does not lead.
func (c *testCluster) follower() *testNode {
	c.t.Helper()
	lead := c.leader()
	for _, tn := range c.running() {
		if tn != lead {
			return tn
		}
	}
	c.t.Fatal("no follower running")
	return nil
}

// poll calls cond until it returns true or d has passed.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

var testT0 = time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)

func testID(i int) string { return fmt.Sprintf("CLUSTERTEST%05d", i) }

func enqueueCmd(id string) *queue.Command {
	m := &queue.Message{ID: id, Sender: "s@example.org", Arrival: testT0,
		Recipients: []queue.Recipient{{Addr: "r@example.net"}}}
	return &queue.Command{Type: queue.CmdEnqueue, Message: m, Body: []byte("Subject: " + id + "\r\n\r\nhello\r\n"), Now: testT0}
}

// mustApply enqueues message i through tn and fails the test on error.
func mustApply(t *testing.T, tn *testNode, i int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, idx, err := tn.node.ApplyWithIndex(ctx, enqueueCmd(testID(i)))
	if err != nil {
		t.Fatalf("apply %d on %s: %v", i, tn.name, err)
	}
	if res.Count != 1 || len(res.IDs) != 1 || res.IDs[0] != testID(i) || idx == 0 {
		t.Fatalf("apply %d on %s: result %+v index %d", i, tn.name, res, idx)
	}
	return idx
}

// waitHas waits until every given node's FSM holds the messages from..to.
func waitHas(t *testing.T, nodes []*testNode, from, to int) {
	t.Helper()
	for _, tn := range nodes {
		missing := ""
		ok := poll(waitLong, func() bool {
			for i := from; i <= to; i++ {
				if _, ok := tn.fsm.Get(testID(i)); !ok {
					missing = testID(i)
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("%s never applied %s", tn.name, missing)
		}
	}
}
