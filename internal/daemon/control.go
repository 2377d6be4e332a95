package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/control"
	"github.com/yubin-mta/yubin/internal/pickup"
	"github.com/yubin-mta/yubin/queue"
)

// Control operations, shared with the command-line tools.
const (
	OpList       = "list"
	OpSuper      = "postsuper"
	OpFlush      = "flush"
	OpSubmit     = "submit"
	OpNewaliases = "newaliases"
	OpStatus     = "status"
)

// ListArgs selects messages for mailq/qshape.
type ListArgs struct {
	Queues []queue.State `json:"queues,omitempty"` // empty = all
}

// SuperArgs is one postsuper action.
type SuperArgs struct {
	Action string      `json:"action"` // delete, hold, release, requeue
	IDs    []string    `json:"ids,omitempty"`
	All    bool        `json:"all,omitempty"`
	Queue  queue.State `json:"queue,omitempty"`
}

// SuperResult lists the messages an action changed.
type SuperResult struct {
	IDs []string `json:"ids"`
}

// FlushArgs is postqueue -f (all), -s SITE or -i ID.
type FlushArgs struct {
	Site string `json:"site,omitempty"`
	ID   string `json:"id,omitempty"`
}

// SubmitResult is the queue ID of a message sendmail submitted.
type SubmitResult struct {
	ID string `json:"id"`
}

// StatusResult describes the node for `yubin cluster status` and scripts.
type StatusResult struct {
	Node     string         `json:"node"`
	Leader   string         `json:"leader"`
	State    string         `json:"state"`
	Messages int            `json:"messages"`
	ByQueue  map[string]int `json:"by_queue"`
}

var superCommands = map[string]queue.CommandType{
	"delete":  queue.CmdDelete,
	"hold":    queue.CmdHold,
	"release": queue.CmdRelease,
	"requeue": queue.CmdRequeue,
}

// superLog is what Postfix's postsuper logs for each message it changed.
var superLog = map[string]string{
	"delete":  "removed",
	"hold":    "placed on hold",
	"release": "released from hold",
	"requeue": "requeued",
}

func decodeArgs(req *control.Request, v any) error {
	if len(req.Args) == 0 {
		return nil
	}
	if err := json.Unmarshal(req.Args, v); err != nil {
		return fmt.Errorf("bad arguments for %s: %w", req.Op, err)
	}
	return nil
}

// privileged reports whether the caller may change the queue: root, the
// user the node runs as, or yubin_admin_group (Postfix's postsuper needs
// the superuser).
func (n *Node) privileged(c control.Caller) bool {
	return c.UID == 0 || int(c.UID) == os.Geteuid() || (n.adminGID >= 0 && int(c.GID) == n.adminGID)
}

func (n *Node) registerControl(s *control.Server) {
	s.Handle(OpList, n.handleList)
	s.Handle(OpSuper, n.handleSuper)
	s.Handle(OpFlush, n.handleFlush)
	s.Handle(OpSubmit, n.handleSubmit)
	s.Handle(OpNewaliases, n.handleNewaliases)
	s.Handle(OpStatus, n.handleStatus)
	n.registerClusterControl(s)
}

func (n *Node) handleList(ctx context.Context, _ control.Caller, req *control.Request) (any, error) {
	var args ListArgs
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	// A follower shows the queue as of everything committed so far (a
	// postsuper on another node just before); without a quorum it shows
	// what it has.
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_ = n.raft.Barrier(bctx)
	cancel()
	want := map[queue.State]bool{}
	for _, q := range args.Queues {
		want[q] = true
	}
	return n.fsm.List(func(m *queue.Message) bool { return len(want) == 0 || want[m.State] }), nil
}

func (n *Node) handleSuper(ctx context.Context, c control.Caller, req *control.Request) (any, error) {
	if !n.privileged(c) {
		return nil, errors.New("postsuper: fatal: use of this command is reserved for the superuser")
	}
	var args SuperArgs
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	typ, ok := superCommands[args.Action]
	if !ok {
		return nil, fmt.Errorf("postsuper: unknown action %q", args.Action)
	}
	for _, id := range args.IDs {
		if err := queue.ValidateID(id); err != nil {
			return nil, fmt.Errorf("postsuper: %w", err)
		}
	}
	res, err := n.apply(ctx, &queue.Command{Type: typ, IDs: args.IDs, All: args.All, Queue: args.Queue, Now: time.Now()})
	if err != nil {
		return nil, fmt.Errorf("postsuper: %w", err)
	}
	for _, id := range res.IDs {
		n.log.Printf("postsuper", "%s: %s", id, superLog[args.Action])
	}
	return SuperResult{IDs: res.IDs}, nil
}

func (n *Node) handleFlush(ctx context.Context, _ control.Caller, req *control.Request) (any, error) {
	var args FlushArgs
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	c := &queue.Command{Type: queue.CmdFlush, Site: args.Site, All: args.ID == "", Now: time.Now()}
	if args.ID != "" {
		if err := queue.ValidateID(args.ID); err != nil {
			return nil, err
		}
		c.IDs = []string{args.ID}
	}
	res, err := n.apply(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("postqueue: %w", err)
	}
	if s := n.scheduler(); s != nil {
		s.Flush()
	}
	return SuperResult{IDs: res.IDs}, nil
}

func (n *Node) handleSubmit(ctx context.Context, c control.Caller, req *control.Request) (any, error) {
	var env pickup.Envelope
	if err := decodeArgs(req, &env); err != nil {
		return nil, err
	}
	// The kernel's word on who submits, not the client's.
	env.UID = int(c.UID)
	id, err := n.submitLocal(ctx, env, req.Body, "sendmail")
	if err != nil {
		return nil, err
	}
	return SubmitResult{ID: id}, nil
}

func (n *Node) handleNewaliases(_ context.Context, c control.Caller, _ *control.Request) (any, error) {
	if !n.privileged(c) {
		return nil, errors.New("newaliases: permission denied")
	}
	return nil, n.reloadMaps()
}

func (n *Node) handleStatus(_ context.Context, _ control.Caller, _ *control.Request) (any, error) {
	st := StatusResult{Node: n.name, ByQueue: map[string]int{}}
	if n.raft != nil {
		_, id := n.raft.Raft().LeaderWithID()
		st.Leader = string(id)
		st.State = n.raft.Raft().State().String()
	}
	for _, m := range n.fsm.List(nil) {
		st.Messages++
		st.ByQueue[string(m.State)]++
	}
	return st, nil
}

// adminGroup resolves yubin_admin_group to a gid, -1 when it is not set.
func adminGroup(cfg *config.Config) (int, error) {
	name := cfg.Get("yubin_admin_group")
	if name == "" {
		return -1, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("yubin_admin_group: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("yubin_admin_group: gid %q: %w", g.Gid, err)
	}
	return gid, nil
}
