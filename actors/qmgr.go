package actors

import (
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/yubin-mta/yubin/queue"
)

// Messages of the qmgr actor.
type (
	queueEvent   struct{ ev queue.Event }
	flushRequest struct{}
	stopRequest  struct{}
	scanTick     struct{ periodic bool }
	// checkPending makes the qmgr look at the messages that events named
	// since the last check, all at once.
	checkPending struct{}
	// destIdle says a destination has nothing to do after receiving
	// `received` jobs; the qmgr stops it if it has not sent it more since.
	destIdle struct {
		key      destKey
		received int
	}
	// entryDone says a queue entry finished its pass over a message.
	entryDone struct {
		id       string
		warned   bool      // a delay notice has been sent for the message
		removed  bool      // the message left the queue
		deferTo  time.Time // next attempt, when it was deferred
		orphaned bool      // results could not be committed: retry later
	}
)

// activateBatch bounds the IDs in one CmdActivate entry.
const activateBatch = 1000

type destRef struct {
	pid       *actor.PID
	forwarded int
}

// qmgr is the scheduler's root actor. It decides which messages become
// active, owns the queue-entry and destination actors as children, and
// forwards jobs from entries to destinations.
type qmgr struct {
	s        *Scheduler
	active   map[string]*actor.PID
	dests    map[destKey]*destRef
	warned   map[string]bool      // delay notice sent (kept in memory only)
	cooldown map[string]time.Time // orphaned entries not retried before
	backlog  bool                 // due messages were left out by the active limit
	stopping bool

	// Messages named by events, checked together (see event).
	pending     []string
	checkQueued bool

	runTimer Stopper
	dueTimer Stopper
	dueAt    time.Time
}

func newQmgr(s *Scheduler) *qmgr {
	return &qmgr{
		s:        s,
		active:   make(map[string]*actor.PID),
		dests:    make(map[destKey]*destRef),
		warned:   make(map[string]bool),
		cooldown: make(map[string]time.Time),
	}
}

// Receive implements actor.Actor.
func (m *qmgr) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		m.armRun(ctx)
		m.scan(ctx)
	case *actor.Stopping:
		m.stopTimers()
	case *queueEvent:
		m.event(ctx, msg.ev)
	case checkPending:
		ids := m.pending
		m.pending, m.checkQueued = nil, false
		m.check(ctx, ids)
	case scanTick:
		if msg.periodic {
			m.armRun(ctx)
		} else {
			m.dueTimer, m.dueAt = nil, time.Time{}
		}
		m.scan(ctx)
	case flushRequest:
		m.flush(ctx)
	case *jobRequest:
		m.forward(ctx, msg)
	case destIdle:
		m.maybeStopDest(ctx, msg)
	case entryDone:
		m.entryDone(ctx, msg)
	case stopRequest:
		m.stopping = true
		m.stopTimers()
		for _, d := range m.dests {
			ctx.Send(d.pid, stopRequest{})
		}
		ctx.Respond(true)
	}
}

func (m *qmgr) stopTimers() {
	if m.runTimer != nil {
		m.runTimer.Stop()
		m.runTimer = nil
	}
	if m.dueTimer != nil {
		m.dueTimer.Stop()
		m.dueTimer = nil
	}
}

// armRun schedules the next periodic queue scan (queue_run_delay).
func (m *qmgr) armRun(ctx actor.Context) {
	if m.stopping {
		return
	}
	self := ctx.Self()
	m.runTimer = m.s.clock.AfterFunc(m.s.cfg.QueueRunDelay, func() { m.s.send(self, scanTick{periodic: true}) })
}

// armDue schedules a scan for when the earliest deferred message is due.
func (m *qmgr) armDue(ctx actor.Context, at time.Time) {
	if m.stopping || at.IsZero() {
		return
	}
	if m.dueTimer != nil && !m.dueAt.After(at) {
		return
	}
	if m.dueTimer != nil {
		m.dueTimer.Stop()
	}
	self := ctx.Self()
	m.dueAt = at
	m.dueTimer = m.s.clock.AfterFunc(at.Sub(m.s.clock.Now()), func() { m.s.send(self, scanTick{}) })
}

type candidate struct {
	id      string
	arrival time.Time
	rank    int // 0 recovered Active, 1 incoming, 2 deferred
}

// scan looks at the whole queue: messages Active for this node without an
// entry (a restart, or results that could not be committed), Incoming ones,
// and due Deferred ones, oldest first within each group.
func (m *qmgr) scan(ctx actor.Context) {
	if m.stopping {
		return
	}
	now := m.s.clock.Now()
	node := m.s.cfg.NodeName
	var cands []candidate
	var nextDue time.Time
	// keep never returns true: the scan reads fields under the FSM's lock
	// and copies nothing.
	m.s.q.List(func(msg *queue.Message) bool {
		if _, busy := m.active[msg.ID]; busy {
			return false
		}
		switch msg.State {
		case queue.Active:
			if (msg.Node == node || msg.Node == "" || m.s.cfg.AdoptActive) && !now.Before(m.cooldown[msg.ID]) {
				cands = append(cands, candidate{msg.ID, msg.Arrival, 0})
			}
		case queue.Incoming:
			cands = append(cands, candidate{msg.ID, msg.Arrival, 1})
		case queue.Deferred:
			if !msg.NextAttempt.After(now) {
				cands = append(cands, candidate{msg.ID, msg.Arrival, 2})
			} else if nextDue.IsZero() || msg.NextAttempt.Before(nextDue) {
				nextDue = msg.NextAttempt
			}
		}
		return false
	})
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if !a.arrival.Equal(b.arrival) {
			return a.arrival.Before(b.arrival)
		}
		return a.id < b.id
	})
	m.activate(ctx, cands)
	m.armDue(ctx, nextDue)
}

// activate brings candidates into the active queue, within the active limit.
func (m *qmgr) activate(ctx actor.Context, cands []candidate) {
	room := m.s.cfg.ActiveLimit - len(m.active)
	if room < 0 {
		room = 0
	}
	m.backlog = len(cands) > room
	if len(cands) > room {
		cands = cands[:room]
	}
	var ids []string
	for _, c := range cands {
		if c.rank == 0 {
			delete(m.cooldown, c.id)
			m.startEntry(ctx, c.id)
			continue
		}
		ids = append(ids, c.id)
	}
	now := m.s.clock.Now()
	for len(ids) > 0 {
		n := min(len(ids), activateBatch)
		batch := ids[:n]
		ids = ids[n:]
		_, err := m.s.commit(&queue.Command{Type: queue.CmdActivate, IDs: batch, Node: m.s.cfg.NodeName, Now: now})
		if err != nil {
			m.s.log.Printf("qmgr", "warning: cannot activate %d message(s): %v", len(batch), err)
			// Try again soon rather than after a whole queue_run_delay.
			m.armDue(ctx, now.Add(min(m.s.cfg.QueueRunDelay, 10*time.Second)))
			return
		}
		for _, id := range batch {
			m.startEntry(ctx, id)
		}
	}
}

// startEntry spawns the queue-entry actor of a message that is Active for
// this node.
func (m *qmgr) startEntry(ctx actor.Context, id string) {
	if _, busy := m.active[id]; busy {
		return
	}
	msg, ok := m.s.q.Get(id)
	if !ok || msg.State != queue.Active || (msg.Node != m.s.cfg.NodeName && msg.Node != "" && !m.s.cfg.AdoptActive) {
		return
	}
	activated, warned := m.s.clock.Now(), m.warned[id]
	// The producer makes a fresh actor each time, so a restart after a
	// panic starts the pass over (at-least-once) instead of reusing
	// half-updated state.
	m.active[id] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newEntry(m.s, msg, activated, warned)
	}))
}

// event reacts to one committed command. New, released and requeued
// messages are looked at one by one, so an enqueue does not cost a scan of
// a large deferred queue.
func (m *qmgr) event(ctx actor.Context, ev queue.Event) {
	switch ev.Type {
	case queue.CmdFlush:
		m.reviveAll(ctx)
		m.scan(ctx)
	case queue.CmdEnqueue, queue.CmdRelease, queue.CmdRequeue, queue.CmdDefer:
		// Activating commits through Raft and the qmgr waits for it; one
		// commit per event would cap activations at one per commit
		// latency. The IDs are collected instead, and every event that
		// arrived meanwhile is handled by the one check queued behind them.
		m.pending = append(m.pending, ev.IDs...)
		if !m.checkQueued {
			m.checkQueued = true
			ctx.Send(ctx.Self(), checkPending{})
		}
	case queue.CmdDelete:
		for _, id := range ev.IDs {
			delete(m.warned, id)
			delete(m.cooldown, id)
		}
	}
}

// check activates the named messages that are due and arms the timer for
// the others.
func (m *qmgr) check(ctx actor.Context, ids []string) {
	if m.stopping {
		return
	}
	now := m.s.clock.Now()
	var cands []candidate
	for _, id := range ids {
		if _, busy := m.active[id]; busy {
			continue
		}
		msg, ok := m.s.q.Get(id)
		if !ok {
			continue
		}
		switch {
		case msg.State == queue.Incoming:
			cands = append(cands, candidate{id, msg.Arrival, 1})
		case msg.State == queue.Deferred && !msg.NextAttempt.After(now):
			cands = append(cands, candidate{id, msg.Arrival, 2})
		case msg.State == queue.Deferred:
			m.armDue(ctx, msg.NextAttempt)
		}
	}
	if len(cands) == 0 {
		return
	}
	backlog := m.backlog
	m.activate(ctx, cands)
	m.backlog = m.backlog || backlog
}

// flush commits a CmdFlush for the deferred queue, revives destinations and
// scans.
func (m *qmgr) flush(ctx actor.Context) {
	if m.stopping {
		return
	}
	now := m.s.clock.Now()
	if _, err := m.s.commit(&queue.Command{Type: queue.CmdFlush, All: true, Queue: queue.Deferred, Now: now}); err != nil {
		m.s.log.Printf("qmgr", "warning: flush: %v", err)
	}
	clear(m.cooldown)
	m.reviveAll(ctx)
	m.scan(ctx)
}

func (m *qmgr) reviveAll(ctx actor.Context) {
	for _, d := range m.dests {
		ctx.Send(d.pid, destRevive{force: true})
	}
}

// forward passes a job to its destination actor, creating it on first use.
func (m *qmgr) forward(ctx actor.Context, req *jobRequest) {
	key := destKey{req.job.Transport, req.job.Nexthop}
	d, ok := m.dests[key]
	if !ok {
		limits := m.s.cfg.limits(key.transport)
		slots := m.s.processSlots(key.transport, limits.ProcessLimit)
		d = &destRef{pid: ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return newDestination(m.s, key, limits, slots)
		}))}
		m.dests[key] = d
	}
	d.forwarded++
	ctx.Send(d.pid, req)
}

// maybeStopDest stops an idle destination unless a job is on its way to it.
func (m *qmgr) maybeStopDest(ctx actor.Context, msg destIdle) {
	d, ok := m.dests[msg.key]
	if !ok || d.forwarded != msg.received {
		return
	}
	delete(m.dests, msg.key)
	ctx.Stop(d.pid)
	m.s.board.remove(msg.key)
}

func (m *qmgr) entryDone(ctx actor.Context, msg entryDone) {
	if pid, ok := m.active[msg.id]; ok {
		delete(m.active, msg.id)
		ctx.Stop(pid)
	}
	switch {
	case msg.removed:
		delete(m.warned, msg.id)
	case msg.warned:
		m.warned[msg.id] = true
	}
	if msg.orphaned {
		m.cooldown[msg.id] = m.s.clock.Now().Add(m.s.cfg.MinBackoff)
		m.armDue(ctx, m.cooldown[msg.id])
	}
	if !msg.deferTo.IsZero() {
		m.armDue(ctx, msg.deferTo)
	}
	if m.backlog {
		m.scan(ctx)
	}
}
