package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
)

// joinRetry is the pause between rounds of a new node asking to be added.
const joinRetry = time.Second

// Member is one server of the Raft configuration.
type Member struct {
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Voter  bool   `json:"voter"`
	Leader bool   `json:"leader"`
}

// Status is one node's view of the cluster.
type Status struct {
	Node       string `json:"node"`
	Addr       string `json:"addr"`
	State      string `json:"state"` // Follower, Candidate, Leader, Shutdown
	Term       uint64 `json:"term"`
	Leader     string `json:"leader,omitempty"` // name; empty while none is known
	LeaderAddr string `json:"leader_addr,omitempty"`
	// LastContact is when a follower last heard from the leader; zero on
	// the leader and on a node that never heard from one.
	LastContact  time.Time `json:"last_contact,omitzero"`
	LastLogIndex uint64    `json:"last_log_index"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"` // handed to the FSM by Raft
	FSMIndex     uint64    `json:"fsm_index"`     // last command the queue FSM has applied
	Members      []Member  `json:"members"`
}

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	r := n.raft
	st := Status{
		Node:         n.cfg.NodeName,
		Addr:         n.addr,
		State:        r.State().String(),
		Term:         r.CurrentTerm(),
		LastLogIndex: r.LastIndex(),
		CommitIndex:  r.CommitIndex(),
		AppliedIndex: r.AppliedIndex(),
	}
	st.FSMIndex, _ = n.fsm.applied()
	addr, id := r.LeaderWithID()
	st.Leader, st.LeaderAddr = string(id), string(addr)
	if r.State() != raft.Leader {
		st.LastContact = r.LastContact()
	}
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Members = append(st.Members, Member{
				Name:   string(s.ID),
				Addr:   string(s.Address),
				Voter:  s.Suffrage == raft.Voter,
				Leader: s.ID == id,
			})
		}
		sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].Name < st.Members[j].Name })
	}
	return st
}

// PeerStatus asks the node at addr for its Status over the cluster link.
func (n *Node) PeerStatus(ctx context.Context, addr string) (Status, error) {
	if err := validateAddr(addr); err != nil && addr != n.addr {
		return Status{}, fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	rep, _, err := n.call(ctx, addr, addr == n.addr, protoMember, &request{Op: opStatus})
	if err != nil {
		return Status{}, err
	}
	if err := rep.err(); err != nil {
		return Status{}, err
	}
	if rep.Status == nil {
		return Status{}, fmt.Errorf("cluster: %s sent no status", addr)
	}
	return *rep.Status, nil
}

// Join adds the node name, reachable at addr, as a voter. It may be called
// on any member; the request goes to the leader. Joining a member again with
// the same address changes nothing.
func (n *Node) Join(ctx context.Context, name, addr string) error {
	if err := validateName(name); err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	if err := validateAddr(addr); err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	if n.mux == nil {
		return errors.New("cluster: join: this node has no cluster listener (yubin_cluster_address)")
	}
	if _, err := n.toLeader(ctx, protoMember, &request{Op: opJoin, Name: name, Addr: addr}); err != nil {
		return fmt.Errorf("cluster: join %s: %w", name, err)
	}
	return nil
}

// Leave removes the node name from the cluster. It may be called on any
// member, also for the node itself.
func (n *Node) Leave(ctx context.Context, name string) error {
	if err := validateName(name); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	if n.mux == nil {
		return errors.New("cluster: leave: this node has no cluster listener (yubin_cluster_address)")
	}
	if _, err := n.toLeader(ctx, protoMember, &request{Op: opLeave, Name: name}); err != nil {
		return fmt.Errorf("cluster: leave %s: %w", name, err)
	}
	return nil
}

func (n *Node) leaderJoin(ctx context.Context, name, addr string) reply {
	servers, rep, ok := n.servers()
	if !ok {
		return rep
	}
	for _, s := range servers {
		switch {
		case string(s.ID) == name && string(s.Address) == addr && s.Suffrage == raft.Voter:
			return reply{Code: codeOK}
		case string(s.Address) == addr && string(s.ID) != name:
			return reply{Code: codeRejected, Message: fmt.Sprintf("address %s belongs to member %s", addr, s.ID)}
		}
	}
	f := n.raft.AddVoter(raft.ServerID(name), raft.ServerAddress(addr), 0, timeLeft(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return n.futureError(err)
	}
	n.log.Info("cluster member added", "name", name, "addr", addr)
	return reply{Code: codeOK, Index: f.Index()}
}

func (n *Node) leaderLeave(ctx context.Context, name string) reply {
	servers, rep, ok := n.servers()
	if !ok {
		return rep
	}
	found := false
	for _, s := range servers {
		found = found || string(s.ID) == name
	}
	if !found {
		return reply{Code: codeRejected, Message: fmt.Sprintf("%s is not a member", name)}
	}
	f := n.raft.RemoveServer(raft.ServerID(name), 0, timeLeft(ctx))
	if err := waitFuture(ctx, f); err != nil {
		return n.futureError(err)
	}
	n.log.Info("cluster member removed", "name", name)
	return reply{Code: codeOK, Index: f.Index()}
}

// servers returns the latest Raft configuration, or the reply to send when
// it cannot be read.
func (n *Node) servers() ([]raft.Server, reply, bool) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.futureError(err), false
	}
	return f.Configuration().Servers, reply{}, true
}

// isMember reports whether this node appears in its Raft configuration,
// which a new node learns from the leader once it was added.
func (n *Node) isMember() bool {
	servers, _, ok := n.servers()
	if !ok {
		return false
	}
	for _, s := range servers {
		if string(s.ID) == n.cfg.NodeName {
			return true
		}
	}
	return false
}

// autoJoin runs on a new node that is not among the initial peers: it asks
// the listed peers, round after round, to add it, until it is a member or
// the node shuts down.
func (n *Node) autoJoin() {
	defer n.wg.Done()
	for round := 0; ; round++ {
		if n.isMember() {
			return
		}
		if round%30 == 1 {
			n.log.Warn("not yet added to the cluster: this node is not in yubin_cluster_peers, so it asks the listed peers to add it; for a new cluster, list every initial node, this one included")
		}
		for _, p := range n.cfg.Peers {
			if n.tryJoinVia(p) {
				return
			}
			if n.ctx.Err() != nil {
				return
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(joinRetry):
		}
	}
}

// tryJoinVia asks peer p (and the leader it names) to add this node.
func (n *Node) tryJoinVia(p Peer) bool {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	req := &request{Op: opJoin, Name: n.cfg.NodeName, Addr: n.addr}
	addr := p.Addr
	for range 2 {
		rep, _, err := n.call(ctx, addr, false, protoMember, req)
		if err != nil {
			n.log.Debug("cluster join request failed", "peer", p.Name, "addr", addr, "error", err)
			return false
		}
		switch {
		case rep.Code == codeOK:
			n.log.Info("joined the cluster", "via", addr)
			return true
		case rep.Code == codeNotLeader && rep.LeaderAddr != "":
			addr = rep.LeaderAddr
		default:
			n.log.Debug("cluster join refused", "peer", p.Name, "addr", addr, "reason", rep.Message)
			return false
		}
	}
	return false
}
