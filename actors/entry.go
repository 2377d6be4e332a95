package actors

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/yubin-mta/yubin/queue"
)

// jobRequest is a job on its way from an entry to a destination.
type jobRequest struct {
	job   *Job
	entry *actor.PID
}

// jobOutcome is a finished (or suspended) job on its way back to its entry.
type jobOutcome struct {
	req       *jobRequest
	results   []Result
	started   time.Time // when the delivery began; zero if it never did
	logAs     string    // program name for the log lines
	delivered bool      // a real delivery ran (counted in Scheduler.inflight)
}

// entry is the queue-entry actor of one active message: one pass of
// delivery attempts over its unfinished recipients.
type entry struct {
	s         *Scheduler
	msg       queue.Message // as activated
	activated time.Time
	warned    bool
	held      io.ReadCloser // the body, open for notices (see holdBody)
	heldSize  int64

	pending      int
	removed      bool // a commit removed the message (all recipients final)
	gone         bool // the message was deleted meanwhile
	commitFailed bool
	deferReason  string
	bounced      []queue.Recipient // for the non-delivery notice
	succeeded    []queue.Recipient // NOTIFY=SUCCESS recipients delivered
}

func newEntry(s *Scheduler, msg queue.Message, activated time.Time, warned bool) *entry {
	return &entry{s: s, msg: msg, activated: activated, warned: warned}
}

// holdBody keeps the body open while the entry lives: the last result's
// commit removes the message and its body file, and a bounce still needs
// the original. An open file outlives its name.
func (e *entry) holdBody() {
	if e.msg.Sender == "" {
		return // no notice is ever sent for the null sender
	}
	rc, err := e.s.q.Body(e.msg.ID)
	if err != nil {
		return
	}
	f, ok := rc.(interface {
		io.ReaderAt
		Size() int64
	})
	if !ok {
		rc.Close()
		return
	}
	e.held, e.heldSize = rc, f.Size()
}

// original opens the message for a notice: the held body if there is one.
func (e *entry) original() (io.ReadCloser, error) {
	if e.held != nil {
		return io.NopCloser(io.NewSectionReader(e.held.(io.ReaderAt), 0, e.heldSize)), nil
	}
	return e.s.q.Body(e.msg.ID)
}

func (e *entry) releaseBody() {
	if e.held != nil {
		e.held.Close()
		e.held = nil
	}
}

// Receive implements actor.Actor.
func (e *entry) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		e.holdBody()
		e.start(ctx)
	case *actor.Stopped:
		e.releaseBody()
	case *jobOutcome:
		e.record(msg)
		e.pending--
		if e.pending == 0 {
			e.finish(ctx)
		}
	}
}

type routeKey struct{ transport, nexthop string }

// start logs the activation, routes the recipients and sends out the jobs.
func (e *entry) start(ctx actor.Context) {
	m := &e.msg
	e.s.log.Printf("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", m.ID, m.Sender, m.Size, len(m.Recipients))
	groups := make(map[routeKey][]JobRecipient)
	var order []routeKey
	var unroutable []Result
	var unroutableRcpts []JobRecipient
	for i, r := range m.Recipients {
		if r.Status.Final() {
			continue
		}
		jr := JobRecipient{Index: i, Addr: r.Addr, OrigAddr: r.OrigAddr, Notify: r.Notify, ORCPT: r.ORCPT, Target: r.Target}
		rt, err := e.route(r)
		if err == nil && e.s.transports[rt.Transport] == nil {
			err = errors.New("mail transport unavailable")
		}
		if err != nil {
			unroutable = append(unroutable, Result{Index: i, Status: queue.RcptDeferred, DSN: "4.3.0", Reply: err.Error(), Relay: "none"})
			unroutableRcpts = append(unroutableRcpts, jr)
			continue
		}
		if rt.Recipient != "" && rt.Recipient != r.Addr {
			jr.Addr = rt.Recipient
			if jr.OrigAddr == "" {
				jr.OrigAddr = r.Addr
			}
		}
		k := routeKey{rt.Transport, rt.Nexthop}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], jr)
	}
	body := func() (io.ReadCloser, error) { return e.s.q.Body(m.ID) }
	var reqs []*jobRequest
	for _, k := range order {
		limit := e.s.cfg.limits(k.transport).RecipientLimit
		rcpts := groups[k]
		for len(rcpts) > 0 {
			n := len(rcpts)
			if limit > 0 && n > limit {
				n = limit
			}
			job := &Job{QueueID: m.ID, Transport: k.transport, Nexthop: k.nexthop, Sender: m.Sender,
				Recipients: rcpts[:n:n], Message: e.msg, Body: body}
			reqs = append(reqs, &jobRequest{job: job, entry: ctx.Self()})
			rcpts = rcpts[n:]
		}
	}
	e.pending = len(reqs)
	if len(unroutable) > 0 {
		job := &Job{QueueID: m.ID, Sender: m.Sender, Recipients: unroutableRcpts, Message: e.msg}
		e.record(&jobOutcome{req: &jobRequest{job: job}, results: unroutable, logAs: "error"})
	}
	for _, r := range reqs {
		ctx.Send(ctx.Parent(), r)
	}
	if e.pending == 0 {
		e.finish(ctx)
	}
}

// route asks the Router, turning a panic in its table lookups into an
// error so one bad recipient cannot stop the whole message.
func (e *entry) route(r queue.Recipient) (rt Route, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("address resolver failure: %v", p)
		}
	}()
	return e.s.router.Route(r, e.msg.Sender)
}

// record commits one job's results, then logs them. Nothing is logged as
// final before the queue holds it.
func (e *entry) record(o *jobOutcome) {
	if o.delivered {
		defer e.s.inflight.done()
	}
	now := e.s.clock.Now()
	results := e.normalize(o)
	if o.delivered && e.s.deliverCtx.Err() != nil {
		// Stop cancelled this delivery: a deferral now says nothing about
		// the destination. Keep only final results; the message stays
		// active and the next scheduler (a new leader) delivers the rest
		// at once instead of after a backoff.
		kept := results[:0]
		for _, r := range results {
			if r.Status != queue.RcptDeferred {
				kept = append(kept, r)
			}
		}
		if len(kept) < len(results) {
			e.commitFailed = true
		}
		results = kept
		if len(results) == 0 {
			return
		}
	}
	cmd := &queue.Command{Type: queue.CmdResult, ID: e.msg.ID, Now: now}
	for _, r := range results {
		cmd.Results = append(cmd.Results, queue.RcptResult{Index: r.Index, Status: r.Status, DSN: resultDSN(r), Reason: r.Reply})
	}
	res, err := e.s.commit(cmd)
	if err != nil {
		e.commitFailed = true
		e.s.log.Printf("qmgr", "warning: %s: cannot record delivery results: %v", e.msg.ID, err)
		return
	}
	if res.Removed {
		e.removed = true
	} else if res.Count == 0 {
		e.gone = true
	}
	b := now.Sub(e.activated)
	if !o.started.IsZero() {
		b = o.started.Sub(e.activated)
	}
	a := e.activated.Sub(e.msg.Arrival)
	total := now.Sub(e.msg.Arrival)
	for _, r := range results {
		rc := e.msg.Recipients[r.Index]
		to, orig := rc.Addr, rc.OrigAddr
		for _, jr := range o.req.job.Recipients {
			if jr.Index == r.Index {
				to, orig = jr.Addr, jr.OrigAddr
			}
		}
		e.s.log.Printf(o.logAs, "%s", deliveryLine(e.msg.ID, to, orig, r, total, a, b))
		rc.Status, rc.DSN, rc.Reason = r.Status, resultDSN(r), r.Reply
		switch r.Status {
		case queue.RcptBounced:
			if wantsNotice(rc.Notify, NoticeFailure) {
				e.bounced = append(e.bounced, rc)
			}
		case queue.RcptSent:
			if wantsNotice(rc.Notify, NoticeSuccess) {
				e.succeeded = append(e.succeeded, rc)
			}
		case queue.RcptDeferred:
			e.deferReason = r.Reply
		}
	}
}

// normalize keeps one result per job recipient: unknown indexes and
// duplicates are dropped, missing ones become a deferral, statuses are
// checked, and soft_bounce is applied.
func (e *entry) normalize(o *jobOutcome) []Result {
	byIndex := make(map[int]Result, len(o.results))
	for _, r := range o.results {
		if _, dup := byIndex[r.Index]; !dup {
			byIndex[r.Index] = r
		}
	}
	out := make([]Result, 0, len(o.req.job.Recipients))
	for _, jr := range o.req.job.Recipients {
		r, ok := byIndex[jr.Index]
		switch {
		case !ok:
			r = Result{Index: jr.Index, Status: queue.RcptDeferred, DSN: "4.3.0", Reply: "unknown mail transport error", Relay: "none"}
		case r.Status != queue.RcptSent && r.Status != queue.RcptBounced && r.Status != queue.RcptDeferred:
			r = Result{Index: jr.Index, Status: queue.RcptDeferred, DSN: "4.3.0",
				Reply: fmt.Sprintf("unknown mail transport error: invalid status %q", r.Status), Relay: r.Relay}
		}
		if r.DSN != "" && !validDSN(r.DSN) {
			r.DSN = ""
		}
		if e.s.cfg.SoftBounce {
			r = softBounce(r)
		}
		out = append(out, r)
	}
	return out
}

// finish ends the pass: the message is gone, or it expires, or it is
// deferred with the next backoff. Notices go out after their commits.
func (e *entry) finish(ctx actor.Context) {
	done := entryDone{id: e.msg.ID, warned: e.warned}
	defer func() {
		e.releaseBody()
		ctx.Send(ctx.Parent(), done)
	}()
	switch {
	case e.commitFailed:
		// The queue does not know what happened; deliver again later.
		done.orphaned = true
		return
	case e.gone:
		done.removed = true
		return
	case e.removed:
		e.notices()
		e.s.log.Printf("qmgr", "%s: removed", e.msg.ID)
		done.removed = true
		return
	}
	now := e.s.clock.Now()
	cur, ok := e.s.q.Get(e.msg.ID)
	if !ok {
		done.removed = true
		return
	}
	if !e.s.cfg.SoftBounce && expired(&cur, now, &e.s.cfg) {
		if e.expire(&cur, now) {
			done.removed = true
			return
		}
	}
	if e.s.cfg.DelayWarningTime > 0 && !e.warned && now.Sub(cur.Arrival) >= e.s.cfg.DelayWarningTime {
		e.warned, done.warned = true, true
		var late []queue.Recipient
		for _, r := range cur.Recipients {
			if !r.Status.Final() && wantsNotice(r.Notify, NoticeDelay) {
				late = append(late, r)
			}
		}
		e.notify(cur, late, NoticeDelay)
	}
	next := now.Add(backoff(e.msg.Attempts, now.Sub(cur.Arrival), e.s.cfg.MinBackoff, e.s.cfg.MaxBackoff))
	if _, err := e.s.commit(&queue.Command{Type: queue.CmdDefer, ID: e.msg.ID, NextAttempt: next, Reason: e.deferReason, Now: now}); err != nil {
		e.s.log.Printf("qmgr", "warning: %s: cannot defer: %v", e.msg.ID, err)
		done.orphaned = true
	} else {
		done.deferTo = next
	}
	e.notices()
}

// expire returns a message that outlived its queue lifetime to the sender:
// its deferred recipients become bounced with their last reason. It reports
// whether the message left the queue.
func (e *entry) expire(cur *queue.Message, now time.Time) bool {
	cmd := &queue.Command{Type: queue.CmdResult, ID: cur.ID, Now: now}
	var rcpts []queue.Recipient
	for i, r := range cur.Recipients {
		if r.Status.Final() {
			continue
		}
		if r.DSN == "" {
			r.DSN = "4.4.7" // delivery time expired
		}
		if r.Reason == "" {
			r.Reason = "message expired"
		}
		cmd.Results = append(cmd.Results, queue.RcptResult{Index: i, Status: queue.RcptBounced, DSN: r.DSN, Reason: r.Reason})
		r.Status = queue.RcptBounced
		if wantsNotice(r.Notify, NoticeFailure) {
			rcpts = append(rcpts, r)
		}
	}
	res, err := e.s.commit(cmd)
	if err != nil {
		e.s.log.Printf("qmgr", "warning: %s: cannot expire: %v", cur.ID, err)
		return false
	}
	e.s.log.Printf("qmgr", "%s: from=<%s>, status=expired, returned to sender", cur.ID, cur.Sender)
	e.bounced = append(e.bounced, rcpts...)
	e.notices()
	if res.Removed {
		e.s.log.Printf("qmgr", "%s: removed", cur.ID)
	}
	return true
}

// notices sends the failure and success notices collected in this pass.
func (e *entry) notices() {
	e.notify(e.msg, e.bounced, NoticeFailure)
	e.notify(e.msg, e.succeeded, NoticeSuccess)
	e.bounced, e.succeeded = nil, nil
}

// notify asks the Notifier for one notice. There is never a notice for the
// null sender: that is how bounce loops are avoided.
func (e *entry) notify(m queue.Message, rcpts []queue.Recipient, kind string) {
	if e.s.cfg.Notifier == nil || m.Sender == "" || len(rcpts) == 0 {
		return
	}
	id, err := e.s.cfg.Notifier.Bounce(e.s.ctx, m, rcpts, kind, e.original)
	if err != nil {
		e.s.log.Printf("bounce", "warning: %s: cannot send %s notice: %v", m.ID, kind, err)
		return
	}
	if id != "" {
		e.s.log.Printf("bounce", "%s", noticeLine(m.ID, kind, id))
	}
}
