package queue

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrDuplicateID is the Apply result for an Enqueue whose queue ID exists.
var ErrDuplicateID = errors.New("duplicate queue ID")

// ApplyResult is what Apply returns for every command.
type ApplyResult struct {
	Count   int      // messages affected
	Removed bool     // Result: the message left the queue (all recipients final)
	IDs     []string // messages affected (Delete, Hold, Release, Requeue, Flush, Activate)
	Err     error    // business error, e.g. ErrDuplicateID
}

// Event tells the scheduler which messages a committed command changed.
type Event struct {
	Type  CommandType
	IDs   []string
	Index uint64 // Raft log index of the command
}

// FSM is the queue state machine. It implements raft.FSM.
type FSM struct {
	mu     sync.RWMutex
	msgs   map[string]*Message
	bodies *bodyStore

	snapMu    sync.Mutex
	snapStats SnapshotStats

	// onEvent, when set, is called after each applied command, outside the
	// lock. It must not block: the scheduler queues the event and returns.
	onEvent func(Event)
}

// NewFSM returns an empty queue whose bodies live under dir.
func NewFSM(dir string) (*FSM, error) {
	bs, err := openBodyStore(dir)
	if err != nil {
		return nil, err
	}
	return &FSM{msgs: make(map[string]*Message), bodies: bs}, nil
}

// OnEvent installs the event hook. Call it before Raft starts applying.
func (f *FSM) OnEvent(fn func(Event)) { f.onEvent = fn }

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := Decode(l.Data)
	if err != nil {
		// Proposers validate commands before they reach the log, so this is
		// a damaged or foreign entry: report it, change nothing.
		return ApplyResult{Err: err}
	}
	res, ids := f.apply(c)
	res.IDs = ids
	if f.onEvent != nil && len(ids) > 0 {
		f.onEvent(Event{Type: c.Type, IDs: ids, Index: l.Index})
	}
	return res
}

// ApplyCommand applies c directly, without Raft. Recovery tools and tests
// use it to replay commands.
func (f *FSM) ApplyCommand(c *Command) ApplyResult {
	res, ids := f.apply(c)
	res.IDs = ids
	return res
}

func (f *FSM) apply(c *Command) (ApplyResult, []string) {
	switch c.Type {
	case CmdEnqueue:
		return f.applyEnqueue(c)
	case CmdDelete:
		return f.applyDelete(c)
	case CmdHold, CmdRelease, CmdRequeue, CmdFlush, CmdActivate:
		return f.applyChange(c)
	case CmdResult:
		return f.applyResult(c)
	case CmdDefer:
		return f.applyDefer(c)
	}
	// An unknown command with IgnoreIfUnknown set: skipped on purpose.
	return ApplyResult{}, nil
}

func (f *FSM) applyEnqueue(c *Command) (ApplyResult, []string) {
	return f.enqueue(c, nil)
}

// applyEnqueueWritten adds a message whose body ApplyBatch already wrote.
func (f *FSM) applyEnqueueWritten(c *Command, ref BodyRef) (ApplyResult, []string) {
	return f.enqueue(c, &ref)
}

func (f *FSM) enqueue(c *Command, ref *BodyRef) (ApplyResult, []string) {
	m := c.Message.clone()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.msgs[m.ID]; ok {
		if ref != nil {
			f.bodies.release(*ref)
		}
		return ApplyResult{Err: fmt.Errorf("%w: %s", ErrDuplicateID, m.ID)}, nil
	}
	if ref == nil {
		r, err := f.bodies.write(c.Body)
		if err != nil {
			return ApplyResult{Err: err}, nil
		}
		ref = &r
	}
	m.Stored = *ref
	m.Size = int64(len(c.Body))
	if m.State != Hold {
		m.State = Incoming
	}
	f.msgs[m.ID] = m
	return ApplyResult{Count: 1}, []string{m.ID}
}

// selected returns the messages a command names: its IDs, or with All every
// message in c.Queue (every queue when empty). The caller holds the lock.
func (f *FSM) selected(c *Command) []*Message {
	var out []*Message
	if c.All {
		for _, m := range f.msgs {
			if c.Queue == "" || m.State == c.Queue {
				out = append(out, m)
			}
		}
		return out
	}
	for _, id := range c.IDs {
		if m, ok := f.msgs[id]; ok && (c.Queue == "" || m.State == c.Queue) {
			out = append(out, m)
		}
	}
	return out
}

func (f *FSM) applyDelete(c *Command) (ApplyResult, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, m := range f.selected(c) {
		f.removeLocked(m.ID)
		ids = append(ids, m.ID)
	}
	return ApplyResult{Count: len(ids)}, ids
}

func (f *FSM) removeLocked(id string) {
	if m, ok := f.msgs[id]; ok {
		delete(f.msgs, id)
		f.bodies.release(m.Stored)
	}
}

func (f *FSM) applyChange(c *Command) (ApplyResult, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, m := range f.selected(c) {
		if changeState(m, c) {
			ids = append(ids, m.ID)
		}
	}
	return ApplyResult{Count: len(ids)}, ids
}

// changeState applies one of Hold, Release, Requeue, Flush or Activate to m
// and reports whether m changed.
func changeState(m *Message, c *Command) bool {
	switch c.Type {
	case CmdHold:
		if m.State == Hold {
			return false
		}
		m.State, m.Node = Hold, ""
	case CmdRelease:
		if m.State != Hold {
			return false
		}
		m.State, m.NextAttempt = Deferred, c.Now
	case CmdRequeue:
		// Like postsuper -r: the message starts over; final recipients stay final.
		m.State, m.Node, m.NextAttempt = Incoming, "", time.Time{}
		for i := range m.Recipients {
			if !m.Recipients[i].Status.Final() {
				m.Recipients[i].Status = RcptPending
			}
		}
	case CmdFlush:
		if m.State != Deferred || (c.Site != "" && !m.hasDomain(c.Site)) {
			return false
		}
		m.NextAttempt = c.Now
	case CmdActivate:
		if m.State != Incoming && m.State != Deferred {
			return false
		}
		m.State, m.Node = Active, c.Node
	}
	return true
}

func (m *Message) hasDomain(site string) bool {
	for _, r := range m.Recipients {
		if r.Status.Final() {
			continue
		}
		if i := strings.LastIndexByte(r.Addr, '@'); i >= 0 && strings.EqualFold(r.Addr[i+1:], site) {
			return true
		}
	}
	return false
}

func (f *FSM) applyResult(c *Command) (ApplyResult, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[c.ID]
	if !ok {
		return ApplyResult{}, nil
	}
	for _, r := range c.Results {
		if r.Index >= len(m.Recipients) {
			continue
		}
		rc := &m.Recipients[r.Index]
		if rc.Status.Final() {
			continue // a committed final result is never overwritten
		}
		rc.Status, rc.DSN, rc.Reason = r.Status, r.DSN, r.Reason
		if r.Status == RcptDeferred {
			m.Reason = r.Reason
		}
	}
	if m.allFinal() {
		f.removeLocked(m.ID)
		return ApplyResult{Count: 1, Removed: true}, []string{m.ID}
	}
	return ApplyResult{Count: 1}, []string{m.ID}
}

func (f *FSM) applyDefer(c *Command) (ApplyResult, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[c.ID]
	if !ok || m.State == Hold {
		return ApplyResult{}, nil
	}
	m.State, m.Node, m.NextAttempt = Deferred, "", c.NextAttempt
	m.Attempts++
	if c.Reason != "" {
		m.Reason = c.Reason
	}
	return ApplyResult{Count: 1}, []string{m.ID}
}

func (m *Message) allFinal() bool {
	for _, r := range m.Recipients {
		if !r.Status.Final() {
			return false
		}
	}
	return true
}

func (m *Message) clone() *Message {
	c := *m
	c.Recipients = append([]Recipient(nil), m.Recipients...)
	return &c
}

// Get returns a copy of the message with the given ID.
func (f *FSM) Get(id string) (Message, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.msgs[id]
	if !ok {
		return Message{}, false
	}
	return *m.clone(), true
}

// List returns copies of all messages for which keep returns true (all when
// keep is nil), oldest first.
func (f *FSM) List(keep func(*Message) bool) []Message {
	f.mu.RLock()
	out := make([]Message, 0, len(f.msgs))
	for _, m := range f.msgs {
		if keep == nil || keep(m) {
			out = append(out, *m.clone())
		}
	}
	f.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Arrival.Equal(out[j].Arrival) {
			return out[i].Arrival.Before(out[j].Arrival)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Len returns the number of messages in the queue.
func (f *FSM) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.msgs)
}

// Body opens a message's body for reading. The reader stays valid even if
// the message is removed while it is open.
func (f *FSM) Body(id string) (io.ReadCloser, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	f.mu.RLock()
	m, ok := f.msgs[id]
	var ref BodyRef
	if ok {
		ref = m.Stored
	}
	f.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("open queue body %s: no such message", id)
	}
	b, err := f.bodies.open(ref)
	if err != nil {
		return nil, err // not a nil *Body in a non-nil interface
	}
	return b, nil
}
