package cluster

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

func TestThreeNodesForwardApply(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	f := c.follower()

	idx := mustApply(t, f, 1)
	// The follower's FSM may lag the leader's; WaitApplied closes the gap.
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := f.node.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.fsm.Get(testID(1)); !ok {
		t.Fatal("follower FSM lacks the message after WaitApplied")
	}
	waitHas(t, c.nodes, 1, 1)

	// A business error of the leader's FSM survives the trip.
	_, err := f.node.Apply(ctx, enqueueCmd(testID(1)))
	if !errors.Is(err, queue.ErrDuplicateID) || errors.Is(err, ErrNoQuorum) {
		t.Fatalf("duplicate through follower: %v", err)
	}
	// Results with several IDs survive too.
	mustApply(t, lead, 2)
	res, err := f.node.Apply(ctx, &queue.Command{Type: queue.CmdHold, IDs: []string{testID(1), testID(2)}, Now: testT0})
	if err != nil || res.Count != 2 || len(res.IDs) != 2 {
		t.Fatalf("hold through follower: %+v, %v", res, err)
	}
	// An invalid command never enters the log.
	bad := enqueueCmd("bad/id")
	if _, err := f.node.Apply(ctx, bad); err == nil || errors.Is(err, ErrNoQuorum) {
		t.Fatalf("invalid command through follower: %v", err)
	}

	// Barrier on every node: afterwards its FSM shows the hold.
	for _, tn := range c.nodes {
		if err := tn.node.Barrier(ctx); err != nil {
			t.Fatalf("barrier on %s: %v", tn.name, err)
		}
		if m, ok := tn.fsm.Get(testID(2)); !ok || m.State != queue.Hold {
			t.Fatalf("%s after barrier: %+v", tn.name, m)
		}
	}

	st := f.node.Status()
	if st.Leader != lead.name || st.LeaderAddr != lead.addr || st.State != "Follower" || len(st.Members) != 3 {
		t.Fatalf("status: %+v", st)
	}
	if st.CommitIndex < idx || st.FSMIndex < idx || st.Term == 0 || st.LastContact.IsZero() {
		t.Fatalf("status indexes: %+v", st)
	}
	for _, m := range st.Members {
		if !m.Voter || m.Leader != (m.Name == lead.name) {
			t.Fatalf("member %+v", m)
		}
	}
	remote, err := f.node.PeerStatus(ctx, lead.addr)
	if err != nil || remote.Node != lead.name || remote.State != "Leader" {
		t.Fatalf("peer status: %+v, %v", remote, err)
	}
}

func TestFailoverRestartAndSnapshotCatchUp(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 1 // compact the log: a lagging node needs the snapshot
		cfg.SnapshotThreshold = 1 << 20
		cfg.LogSegmentSize = 4096 // small segments, so compaction deletes some
	})
	lead := c.leader()
	f := c.follower()
	for i := 1; i <= 5; i++ {
		mustApply(t, f, i)
	}
	waitHas(t, c.nodes, 1, 5)

	// A follower goes down, the cluster moves on and compacts its log.
	f.stop()
	for i := 6; i <= 15; i++ {
		mustApply(t, lead, i)
	}
	for _, tn := range c.running() {
		if err := tn.node.Raft().Snapshot().Error(); err != nil {
			t.Fatalf("snapshot on %s: %v", tn.name, err)
		}
	}
	f.start(nil)
	waitHas(t, []*testNode{f}, 1, 15)
	// Raft records the installed snapshot just after the FSM restored it.
	if !poll(waitLong, func() bool { return f.node.Raft().Stats()["last_snapshot_index"] != "0" }) {
		t.Fatal("restarted node caught up without installing a snapshot")
	}

	// The leader dies; a new one is elected and Apply works through every
	// remaining node.
	old := lead
	start := time.Now()
	old.stop()
	lead = c.leader()
	if lead == old {
		t.Fatal("stopped node still leads")
	}
	t.Logf("new leader %s after %v", lead.name, time.Since(start))
	next := 16
	for _, tn := range c.running() {
		mustApply(t, tn, next)
		next++
	}
	waitHas(t, c.running(), 1, next-1)

	// The old leader comes back and catches up from its own log plus the
	// new entries.
	old.start(nil)
	waitHas(t, []*testNode{old}, 1, next-1)
	if err := old.node.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustApply(t, old, next)
	waitHas(t, c.nodes, next, next)
}

func TestIsolatedNodeReportsNoQuorum(t *testing.T) {
	for _, isolate := range []string{"leader", "follower"} {
		t.Run(isolate, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3, nil)
			lead := c.leader()
			mustApply(t, lead, 1)
			keep := lead
			if isolate == "follower" {
				keep = c.follower()
			}
			for _, tn := range c.nodes {
				if tn != keep {
					tn.stop()
				}
			}
			for i := 2; i <= 3; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				start := time.Now()
				res, err := keep.node.Apply(ctx, enqueueCmd(testID(i)))
				took := time.Since(start)
				cancel()
				if !errors.Is(err, ErrNoQuorum) {
					t.Fatalf("apply %d cut off from the majority: %+v, %v", i, res, err)
				}
				if took > 4*time.Second {
					t.Fatalf("apply %d took %v, deadline was 2s", i, took)
				}
				if _, ok := keep.fsm.Get(testID(i)); ok {
					t.Fatalf("message %d applied without a majority", i)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := keep.node.Barrier(ctx); !errors.Is(err, ErrNoQuorum) {
				t.Fatalf("barrier cut off from the majority: %v", err)
			}
		})
	}
}

func TestJoinAndLeave(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	mustApply(t, lead, 1)

	// A new node listed nowhere but given the peers joins by itself and
	// does not bootstrap a cluster of its own.
	ln := listenLoopback(t)
	d := &testNode{t: t, name: "node4", addr: ln.Addr().String(), dir: t.TempDir(), secret: testSecret, peers: c.nodes[0].peers}
	c.nodes = append(c.nodes, d)
	d.start(ln)
	waitMembers(t, lead, 4)
	waitHas(t, []*testNode{d}, 1, 1)
	mustApply(t, d, 2)
	waitHas(t, c.nodes, 2, 2)

	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	f := c.follower()
	if f == d {
		f = c.nodes[1]
	}
	if err := f.node.Leave(ctx, d.name); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, lead, 3)
	if err := f.node.Leave(ctx, "nosuchnode"); err == nil || errors.Is(err, ErrNoQuorum) {
		t.Fatalf("leave of a non-member: %v", err)
	}
	if err := f.node.Join(ctx, d.name, d.addr); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, lead, 4)
	if err := f.node.Join(ctx, "other", c.nodes[0].addr); err == nil {
		t.Fatal("join with a member's address accepted")
	}
	if err := f.node.Join(ctx, "bad name", "127.0.0.1:1"); err == nil {
		t.Fatal("join with a bad name accepted")
	}
	if err := f.node.Join(ctx, "x", "127.0.0.1"); err == nil {
		t.Fatal("join without port accepted")
	}
	mustApply(t, f, 3)
	waitHas(t, c.running(), 3, 3)
}

// waitMembers waits until tn's Raft configuration has n servers.
func waitMembers(t *testing.T, tn *testNode, n int) {
	t.Helper()
	var got int
	if !poll(waitLong, func() bool { got = len(tn.node.Status().Members); return got == n }) {
		t.Fatalf("%s has %d members, want %d", tn.name, got, n)
	}
}

func TestRogueNodeWithWrongSecret(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	mustApply(t, lead, 1)

	// A node with the wrong secret, pointed at the cluster, tries to join.
	ln := listenLoopback(t)
	rogue := &testNode{t: t, name: "rogue", addr: ln.Addr().String(), dir: t.TempDir(),
		secret: "not the cluster secret at all!!", peers: c.nodes[0].peers}
	rogue.start(ln)
	defer rogue.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rogue.node.Join(ctx, "rogue", rogue.addr); err == nil {
		t.Fatal("rogue joined")
	}
	actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer acancel()
	if _, err := rogue.node.Apply(actx, enqueueCmd(testID(2))); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("rogue apply: %v", err)
	}
	// Talking to the leader directly does not help either.
	for _, proto := range []byte{protoForward, protoMember} {
		req := &request{Op: opApply, Data: mustEncode(t, enqueueCmd(testID(3)))}
		if proto == protoMember {
			req = &request{Op: opJoin, Name: "rogue", Addr: rogue.addr}
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		rep, _, err := rogue.node.call(cctx, lead.addr, false, proto, req)
		ccancel()
		if err == nil {
			t.Fatalf("rogue request %q answered: %+v", proto, rep)
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if _, err := rogue.node.PeerStatus(sctx, lead.addr); err == nil {
		t.Fatal("rogue read the leader's status")
	}
	// Nor does the cluster talk to the rogue: its Raft never hears a leader.
	if addr, _ := rogue.node.Raft().LeaderWithID(); addr != "" {
		t.Fatalf("rogue knows leader %s", addr)
	}
	if st := rogue.node.Status(); st.CommitIndex != 0 || st.LastLogIndex != 0 {
		t.Fatalf("rogue received the log: %+v", st)
	}
	for _, i := range []int{2, 3} {
		if _, ok := lead.fsm.Get(testID(i)); ok {
			t.Fatalf("rogue message %d reached the queue", i)
		}
	}
	if got := len(lead.node.Status().Members); got != 3 {
		t.Fatalf("cluster has %d members after rogue attempts", got)
	}
	// The real members still work.
	mustApply(t, c.follower(), 4)
}

func mustEncode(t *testing.T, c *queue.Command) []byte {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSingleNode(t *testing.T) {
	for _, networked := range []bool{false, true} {
		t.Run("networked="+strconv.FormatBool(networked), func(t *testing.T) {
			tn := &testNode{t: t, name: "solo", dir: t.TempDir(), secret: testSecret}
			var ln = listenLoopback(t)
			tn.addr = ln.Addr().String()
			if !networked {
				ln.Close()
				ln = nil
				tn.secret = ""
			}
			fsm, err := queue.NewFSM(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cfg := tn.config(ln)
			if !networked {
				cfg.Listener = nil
			}
			n, err := Start(cfg, fsm)
			if err != nil {
				t.Fatal(err)
			}
			tn.node, tn.fsm = n, fsm
			defer tn.stop()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := n.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			mustApply(t, tn, 1)
			if _, ok := fsm.Get(testID(1)); !ok {
				t.Fatal("leader FSM lacks the message after Apply")
			}
			if err := n.Barrier(ctx); err != nil {
				t.Fatal(err)
			}
			if !networked {
				if err := n.Join(ctx, "x", "127.0.0.1:1"); err == nil {
					t.Fatal("join accepted on a node without listener")
				}
			}
			if st := n.Status(); len(st.Members) < 1 || st.Members[0].Name != "solo" || st.Leader != "solo" {
				t.Fatalf("status %+v", st)
			}
		})
	}
}
