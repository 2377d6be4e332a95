package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/yubin-mta/yubin/queue"
)

// destKey names a destination: a transport and a nexthop.
type destKey struct{ transport, nexthop string }

// Messages of a destination actor.
type (
	deliveryDone struct {
		req     *jobRequest
		results []Result
		started time.Time
	}
	destWake   struct{} // a rate delay passed or a process slot freed up
	destRevive struct{ force bool }
)

// destination is the actor of one (transport, nexthop). It queues jobs from
// every entry in arrival order and starts them as its policy allows; each
// delivery runs in its own goroutine and reports back as a deliveryDone.
type destination struct {
	s         *Scheduler
	key       destKey
	limits    DestLimits
	transport Transport
	policy    *destPolicy
	slots     *processSlots

	fifo     []*jobRequest
	received int
	idleSent bool
	stopping bool

	wake          Stopper
	wakeAt        time.Time
	reviveTimer   Stopper
	rcptsInFlight int // recipients of the deliveries running now
}

func newDestination(s *Scheduler, key destKey, limits DestLimits, slots *processSlots) *destination {
	return &destination{
		s: s, key: key, limits: limits, slots: slots,
		transport: s.transports[key.transport],
		policy:    newDestPolicy(limits, s.cfg.MinBackoff),
	}
}

// Receive implements actor.Actor.
func (d *destination) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Stopping:
		d.stopTimers()
		return
	case *jobRequest:
		d.received++
		d.idleSent = false
		// A job due at the very moment the suspension ends must not race
		// the revive timer.
		d.policy.reviveDue(d.s.clock.Now())
		if d.policy.dead {
			d.suspend(ctx, msg)
		} else {
			d.fifo = append(d.fifo, msg)
		}
	case *deliveryDone:
		d.done(ctx, msg)
	case destWake:
		d.wake, d.wakeAt = nil, time.Time{}
	case destRevive:
		now := d.s.clock.Now()
		if msg.force && d.policy.dead {
			d.policy.revive()
		} else {
			d.policy.reviveDue(now)
		}
		if !d.policy.dead && d.reviveTimer != nil {
			d.reviveTimer.Stop()
			d.reviveTimer = nil
		}
	case stopRequest:
		d.stopping = true
		d.fifo = nil
	default:
		return
	}
	d.pump(ctx)
	d.publish(ctx)
}

func (d *destination) stopTimers() {
	if d.wake != nil {
		d.wake.Stop()
		d.wake = nil
	}
	if d.reviveTimer != nil {
		d.reviveTimer.Stop()
		d.reviveTimer = nil
	}
}

// pump starts queued jobs while the policy and the transport's process
// limit allow.
func (d *destination) pump(ctx actor.Context) {
	self := ctx.Self()
	for len(d.fifo) > 0 && !d.stopping {
		now := d.s.clock.Now()
		ok, wait := d.policy.mayStart(now)
		if !ok {
			if wait > 0 {
				d.armWake(self, now.Add(wait))
			}
			return
		}
		if !d.slots.acquire(d.key, func() { d.s.send(self, destWake{}) }) {
			return
		}
		req := d.fifo[0]
		d.fifo[0] = nil
		d.fifo = d.fifo[1:]
		d.policy.started()
		d.rcptsInFlight += len(req.job.Recipients)
		d.launch(self, req, now)
	}
}

func (d *destination) armWake(self *actor.PID, at time.Time) {
	if d.wake != nil && !d.wakeAt.After(at) {
		return
	}
	if d.wake != nil {
		d.wake.Stop()
	}
	d.wakeAt = at
	d.wake = d.s.clock.AfterFunc(at.Sub(d.s.clock.Now()), func() { d.s.send(self, destWake{}) })
}

// launch runs one delivery in a goroutine. A panicking transport defers
// the job instead of taking the scheduler down.
func (d *destination) launch(self *actor.PID, req *jobRequest, now time.Time) {
	d.s.inflight.add()
	go func() {
		var results []Result
		func() {
			defer func() {
				if p := recover(); p != nil {
					results = nil
					for _, r := range req.job.Recipients {
						results = append(results, Result{Index: r.Index, Status: queue.RcptDeferred, DSN: "4.3.0",
							Reply: fmt.Sprintf("unknown mail transport error: %v", p), Relay: "none"})
					}
				}
			}()
			results = d.transport.Deliver(d.s.deliverCtx, req.job)
		}()
		d.s.send(self, &deliveryDone{req: req, results: results, started: now})
	}()
}

// done takes a finished delivery: frees its slot, feeds the policy, passes
// the results to the entry, and suspends the queue if the destination died.
func (d *destination) done(ctx actor.Context, msg *deliveryDone) {
	d.slots.release()
	d.rcptsInFlight -= len(msg.req.job.Recipients)
	now := d.s.clock.Now()
	failed := connectionFailure(msg.results)
	var reason, dsn string
	if failed && len(msg.results) > 0 {
		reason, dsn = msg.results[0].Reply, msg.results[0].DSN
	}
	becameDead := d.policy.finished(now, failed, reason, dsn)
	if d.limits.RateDelay > 0 {
		// Keep the actor (and its lastEnd) alive until the pause is over,
		// even with nothing queued, or a new actor would skip the delay.
		d.armWake(ctx.Self(), now.Add(d.limits.RateDelay))
	}
	ctx.Send(msg.req.entry, &jobOutcome{req: msg.req, results: msg.results, started: msg.started,
		logAs: d.limits.LogName, delivered: true})
	if becameDead {
		self := ctx.Self()
		d.s.log.Printf("qmgr", "warning: %s: destination %s is unavailable: delivery suspended for %s",
			d.key.transport, d.key.nexthop, d.s.cfg.MinBackoff)
		d.reviveTimer = d.s.clock.AfterFunc(d.policy.deadUntil.Sub(now), func() { d.s.send(self, destRevive{}) })
		queued := d.fifo
		d.fifo = nil
		for _, req := range queued {
			d.suspend(ctx, req)
		}
	}
}

// suspend defers a job at once, without a delivery attempt, because the
// destination is dead. Postfix's retry service logs these as "error".
func (d *destination) suspend(ctx actor.Context, req *jobRequest) {
	results := make([]Result, len(req.job.Recipients))
	for i, r := range req.job.Recipients {
		results[i] = d.policy.suspendedResult(r.Index)
	}
	ctx.Send(req.entry, &jobOutcome{req: req, results: results, logAs: "error"})
}

// publish updates the status board and tells the qmgr when the destination
// has nothing left to do, so it can be stopped.
func (d *destination) publish(ctx actor.Context) {
	if d.stopping {
		return
	}
	p := d.policy
	st := DestStatus{Transport: d.key.transport, Nexthop: d.key.nexthop, Active: p.active,
		Recipients: d.rcptsInFlight, Limit: p.window, Queued: len(d.fifo), Dead: p.dead}
	if p.dead {
		st.Reason = p.reason
	}
	d.s.board.set(d.key, st)
	idle := len(d.fifo) == 0 && p.active == 0 && !p.dead && d.wake == nil
	if idle && !d.idleSent {
		d.idleSent = true
		ctx.Send(ctx.Parent(), destIdle{key: d.key, received: d.received})
	}
}
