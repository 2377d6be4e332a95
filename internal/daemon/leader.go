package daemon

import (
	"context"
	"time"
)

// leadership runs the scheduler while this node is the Raft leader.
//
// A node that loses leadership (a new leader was elected, or it lost contact
// with the majority for longer than Raft's leader lease) stops its scheduler
// at once, cancelling deliveries in flight. A node that becomes leader waits
// yubin_delivery_takeover_delay before it starts delivering, so the old
// leader has closed its sessions first: a destination limited to one
// session never sees two, even across a failover. A single node has no one
// to wait for and starts at once.
func (n *Node) leadership(ctx context.Context) {
	defer close(n.leadDone)
	delay := durationParam(n.cfg, "yubin_delivery_takeover_delay")
	if len(n.cfg.List("yubin_cluster_peers")) <= 1 {
		delay = 0
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var since time.Time // when this node last became leader
	for {
		leader := n.raft.IsLeader()
		running := n.scheduler() != nil
		switch {
		case leader && !running:
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) >= delay {
				n.lead(ctx)
			}
		case !leader:
			since = time.Time{}
			if running {
				n.stepDown()
			}
		}
		select {
		case <-ctx.Done():
			n.stepDown()
			return
		case <-tick.C:
		}
	}
}

// lead applies everything committed so far and starts a scheduler.
func (n *Node) lead(ctx context.Context) {
	if err := n.raft.Raft().Barrier(10 * time.Second).Error(); err != nil {
		n.log.Printf("qmgr", "warning: cannot catch up with the queue log: %v", err)
		return
	}
	s := n.newScheduler()
	if err := s.Start(); err != nil {
		n.log.Printf("qmgr", "warning: cannot start the scheduler: %v", err)
		return
	}
	n.mu.Lock()
	n.sched = s
	n.mu.Unlock()
}

// stepDown stops the scheduler without waiting for deliveries: they are
// cancelled, and their messages stay active for the next leader.
func (n *Node) stepDown() {
	n.mu.Lock()
	s := n.sched
	n.sched = nil
	n.mu.Unlock()
	if s == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Stop(ctx)
}
