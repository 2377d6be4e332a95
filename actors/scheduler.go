package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
)

// Scheduler is the queue manager. Create it with New, hook Notify to the
// FSM's event stream, then Start it.
type Scheduler struct {
	cfg        Config
	q          Queue
	applier    Applier
	router     Router
	transports map[string]Transport
	log        *maillog.Logger
	clock      Clock

	system  *actor.ActorSystem
	pid     atomic.Pointer[actor.PID]
	started atomic.Bool
	stopped atomic.Bool // set once actors may no longer be messaged
	// stopCalled makes Stop run once and Start refuse afterwards.
	stopCalled atomic.Bool

	ctx           context.Context // commits and notices
	cancel        context.CancelFunc
	deliverCtx    context.Context // running deliveries
	cancelDeliver context.CancelFunc

	slotsMu  sync.Mutex
	slots    map[string]*processSlots
	board    statusBoard
	inflight *inflight
}

// New returns a Scheduler. transports is keyed by master.cf service name
// (smtp, lmtp, local, docomo-smtp, ...). A nil clock means the wall clock.
func New(cfg Config, q Queue, a Applier, r Router, transports map[string]Transport, log *maillog.Logger, clock Clock) *Scheduler {
	if clock == nil {
		clock = RealClock{}
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 30 * time.Second
	}
	ts := make(map[string]Transport, len(transports))
	for k, v := range transports {
		ts[k] = v
	}
	s := &Scheduler{
		cfg: cfg, q: q, applier: a, router: r, transports: ts, log: log, clock: clock,
		slots:    make(map[string]*processSlots),
		inflight: newInflight(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.deliverCtx, s.cancelDeliver = context.WithCancel(context.Background())
	s.system = actor.NewActorSystem(actor.WithLoggerFactory(func(sys *actor.ActorSystem) *slog.Logger {
		// The actor library's own chatter stays out of the mail log;
		// only its warnings reach stderr.
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).
			With("lib", "protoactor", "system", sys.ID)
	}))
	return s
}

// Start validates the configuration and starts scheduling: messages left
// Active for this node by a previous run are delivered again, due messages
// are activated.
func (s *Scheduler) Start() error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if s.q == nil || s.applier == nil || s.router == nil {
		return errors.New("scheduler: queue, applier and router are required")
	}
	if s.stopCalled.Load() {
		return errors.New("scheduler: stopped")
	}
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("scheduler: already started")
	}
	pid := s.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newQmgr(s) }))
	s.pid.Store(pid)
	return nil
}

// Notify passes a committed queue change to the scheduler. It never blocks;
// install it with FSM.OnEvent.
func (s *Scheduler) Notify(ev queue.Event) {
	if pid := s.pid.Load(); pid != nil {
		s.send(pid, &queueEvent{ev: ev})
	}
}

// Flush is postqueue -f on this node: it commits a CmdFlush that makes every
// deferred message due, revives dead destinations and scans the queue. A
// CmdFlush committed elsewhere has the same effect through Notify.
func (s *Scheduler) Flush() {
	if pid := s.pid.Load(); pid != nil {
		s.send(pid, flushRequest{})
	}
}

// Destinations returns the state of every destination with a live actor.
func (s *Scheduler) Destinations() []DestStatus { return s.board.list() }

// Stop stops activating messages and starting deliveries, waits for running
// deliveries to finish and commit their results until ctx is done, then
// cancels what is still running and stops the actors. Messages whose
// delivery did not finish stay Active for this node and are delivered again
// by the next Start.
func (s *Scheduler) Stop(ctx context.Context) error {
	if !s.stopCalled.CompareAndSwap(false, true) {
		return nil
	}
	pid := s.pid.Load()
	if pid == nil { // never started
		s.stopped.Store(true)
		s.cancelDeliver()
		s.cancel()
		s.system.Shutdown()
		return nil
	}
	var err error
	if _, ferr := s.system.Root.RequestFuture(pid, stopRequest{}, 5*time.Second).Result(); ferr != nil {
		err = fmt.Errorf("scheduler: stop: %w", ferr)
	}
	select {
	case <-s.inflight.idle():
	case <-ctx.Done():
		err = fmt.Errorf("scheduler: stop: %w", ctx.Err())
		s.cancelDeliver()
		// Cancelled deliveries return quickly; give their results a
		// bounded moment to be committed.
		select {
		case <-s.inflight.idle():
		case <-time.After(2 * time.Second):
		}
	}
	s.stopped.Store(true)
	if ferr := s.system.Root.StopFuture(pid).Wait(); ferr != nil && err == nil {
		err = fmt.Errorf("scheduler: stop actors: %w", ferr)
	}
	s.cancelDeliver()
	s.cancel()
	s.system.Shutdown()
	return err
}

// send delivers an actor message unless the scheduler has stopped.
func (s *Scheduler) send(pid *actor.PID, msg any) {
	if s.stopped.Load() {
		return
	}
	s.system.Root.Send(pid, msg)
}

// commit applies a command through Raft with the configured timeout.
func (s *Scheduler) commit(c *queue.Command) (queue.ApplyResult, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
	defer cancel()
	res, err := s.applier.Apply(ctx, c)
	if err == nil && res.Err != nil {
		err = res.Err
	}
	return res, err
}

// processSlots returns the transport-wide delivery counter of a transport.
func (s *Scheduler) processSlots(transport string, limit int) *processSlots {
	s.slotsMu.Lock()
	defer s.slotsMu.Unlock()
	p, ok := s.slots[transport]
	if !ok {
		p = newProcessSlots(limit)
		s.slots[transport] = p
	}
	return p
}
