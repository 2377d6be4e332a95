package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/control"
	"github.com/yubin-mta/yubin/queue"
)

// Cluster control operations.
const (
	OpClusterStatus = "cluster-status"
	OpClusterJoin   = "cluster-join"
	OpClusterLeave  = "cluster-leave"
)

// ClusterStatus is `yubin cluster status`: this node's view, each member's
// own report when it answers, and the queue by state and by delivering node.
type ClusterStatus struct {
	Self     cluster.Status            `json:"self"`
	Members  map[string]cluster.Status `json:"members,omitempty"`
	Errors   map[string]string         `json:"errors,omitempty"`
	ByQueue  map[string]int            `json:"by_queue"`
	Delivery map[string]int            `json:"active_by_node"`
}

// MemberArgs names a node to join or leave.
type MemberArgs struct {
	Name string `json:"name"`
	Addr string `json:"addr,omitempty"`
}

func (n *Node) registerClusterControl(s *control.Server) {
	s.Handle(OpClusterStatus, n.handleClusterStatus)
	s.Handle(OpClusterJoin, n.handleClusterJoin)
	s.Handle(OpClusterLeave, n.handleClusterLeave)
}

func (n *Node) handleClusterStatus(ctx context.Context, _ control.Caller, _ *control.Request) (any, error) {
	st := ClusterStatus{Self: n.raft.Status(), ByQueue: map[string]int{}, Delivery: map[string]int{}}
	for _, m := range n.fsm.List(nil) {
		st.ByQueue[string(m.State)]++
		if m.State == queue.Active {
			st.Delivery[m.Node]++
		}
	}
	for _, m := range st.Self.Members {
		if m.Name == st.Self.Node || m.Addr == "" {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ps, err := n.raft.PeerStatus(pctx, m.Addr)
		cancel()
		if err != nil {
			if st.Errors == nil {
				st.Errors = map[string]string{}
			}
			st.Errors[m.Name] = err.Error()
			continue
		}
		if st.Members == nil {
			st.Members = map[string]cluster.Status{}
		}
		st.Members[m.Name] = ps
	}
	return st, nil
}

func (n *Node) handleClusterJoin(ctx context.Context, c control.Caller, req *control.Request) (any, error) {
	if !n.privileged(c) {
		return nil, errors.New("cluster join: permission denied")
	}
	var args MemberArgs
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	if args.Name == "" || args.Addr == "" {
		return nil, errors.New("cluster join: need NAME and HOST:PORT")
	}
	return nil, n.raft.Join(ctx, args.Name, args.Addr)
}

func (n *Node) handleClusterLeave(ctx context.Context, c control.Caller, req *control.Request) (any, error) {
	if !n.privileged(c) {
		return nil, errors.New("cluster leave: permission denied")
	}
	var args MemberArgs
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	if args.Name == "" {
		return nil, errors.New("cluster leave: need NAME")
	}
	return nil, n.raft.Leave(ctx, args.Name)
}
