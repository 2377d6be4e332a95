package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/yubin-mta/yubin/queue"
)

// ErrNoQuorum means the change could not be committed now, or its outcome is
// unknown; the SMTP layer answers 4xx so the client tries again later.
var ErrNoQuorum = errors.New("cluster: no quorum")

// Node is a running Raft member holding the queue FSM.
type Node struct {
	cfg  Config
	addr string // the address this node advertises as its own
	log  hclog.Logger

	raft      *raft.Raft
	fsm       *appliedFSM
	wal       *wal.WAL
	meta      *metadb.BoltMetaDB // closed by us: WAL.Close leaves it open
	transport raft.Transport
	closeTr   io.Closer
	mux       *mux    // nil for a single node without listener
	dialer    *dialer // nil likewise
	fwd       *forwarder
	jobConns  jobPool // idle delivery job connections (delivery.go)

	// started is closed once raft is set; requests arriving earlier wait.
	started chan struct{}
	ctx     context.Context // canceled by Shutdown
	cancel  context.CancelFunc
	wg      sync.WaitGroup // background goroutines (auto-join)

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens (or creates) the node's state under cfg.Dir and starts Raft.
// A node without state bootstraps the cluster from cfg.Peers if it is listed
// there, and otherwise asks the listed peers to add it (see DESIGN.md).
func Start(cfg Config, fsm *queue.FSM) (*Node, error) {
	if fsm == nil {
		return nil, errors.New("cluster: no queue FSM")
	}
	if err := cfg.validate(); err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, log: cfg.Logger, fsm: newAppliedFSM(fsm), started: make(chan struct{}), ctx: ctx, cancel: cancel}
	if err := n.open(); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	cfg := &n.cfg
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "wal"), 0o700); err != nil {
		return fmt.Errorf("cluster: raft directory: %w", err)
	}
	n.meta = &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.WithLogger(n.log.Named("wal")), wal.WithMetaStore(n.meta), wal.WithSegmentSize(orDefault(cfg.LogSegmentSize, wal.DefaultSegmentSize)))
	if err != nil {
		return fmt.Errorf("cluster: open raft log %s: %w", cfg.Dir, err)
	}
	n.wal = w
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, n.log.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("cluster: snapshot store: %w", err)
	}
	if err := n.openTransport(); err != nil {
		return err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.Logger = n.log
	rc.HeartbeatTimeout = orDefault(cfg.HeartbeatTimeout, defaultHeartbeat)
	rc.ElectionTimeout = orDefault(cfg.ElectionTimeout, defaultElection)
	rc.LeaderLeaseTimeout = rc.HeartbeatTimeout / 2
	rc.CommitTimeout = 5 * time.Millisecond
	// Group commit: the leader writes every queued Apply in one batch, one fsync.
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = orDefault(cfg.SnapshotThreshold, defaultSnapshotAt)
	rc.TrailingLogs = orDefault(cfg.TrailingLogs, defaultTrailingLogs)
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("cluster: raft settings: %w", err)
	}

	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		return fmt.Errorf("cluster: inspect raft state: %w", err)
	}
	autoJoin := false
	if !has {
		servers, join := n.initialServers()
		if join {
			autoJoin = true
		} else if err := raft.BootstrapCluster(rc, w, w, snaps, n.transport, raft.Configuration{Servers: servers}); err != nil {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, newLogCache(w), w, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	close(n.started)
	if autoJoin {
		n.wg.Add(1)
		go n.autoJoin()
	}
	return nil
}

// openTransport sets up the in-memory transport of a single node, or the
// authenticated TLS listener and the Raft network transport over it.
func (n *Node) openTransport() error {
	cfg := &n.cfg
	if !cfg.networked() {
		n.addr = "local:" + cfg.NodeName
		_, tr := raft.NewInmemTransport(raft.ServerAddress(n.addr))
		n.transport = tr
		return nil
	}
	auth, err := newAuthority(cfg.Secret, cfg.NodeName)
	if err != nil {
		return err
	}
	// Issue the first certificate now: a failure shows at start, not later.
	if _, err := auth.certificate(); err != nil {
		return err
	}
	ln := cfg.Listener
	cfg.Listener = nil // owned by the mux from here on
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return fmt.Errorf("cluster: listen on %s: %w", cfg.BindAddr, err)
		}
	}
	if n.addr, err = cfg.advertise(ln); err != nil {
		ln.Close()
		return err
	}
	n.dialer = &dialer{client: auth.clientConfig(), local: sourceAddr(ln.Addr())}
	n.fwd = newForwarder(n.dialer)
	n.mux = newMux(ln, auth.serverConfig(), n.log.Named("cluster"), n.serveConn)
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{m: n.mux, d: n.dialer, advertise: advertiseAddr(n.addr)},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  n.log.Named("transport"),
	})
	n.transport, n.closeTr = tr, tr
	return nil
}

// initialServers returns the configuration a node without state bootstraps,
// or join=true when it must not bootstrap but ask the peers to add it.
func (n *Node) initialServers() (servers []raft.Server, join bool) {
	if len(n.cfg.Peers) == 0 {
		return []raft.Server{{ID: raft.ServerID(n.cfg.NodeName), Address: raft.ServerAddress(n.addr), Suffrage: raft.Voter}}, false
	}
	if _, listed := n.cfg.selfPeer(); !listed {
		return nil, true
	}
	for _, p := range n.cfg.Peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.Name), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter})
	}
	// Every initial node must bootstrap the identical configuration.
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
	return servers, false
}

// Apply proposes a queue command and waits until it is committed on a
// majority and applied by the leader's FSM; on a follower the command is
// forwarded to the leader. The error is ErrNoQuorum (wrapped) when nothing
// could be committed in time or the outcome is unknown, else res.Err.
func (n *Node) Apply(ctx context.Context, c *queue.Command) (queue.ApplyResult, error) {
	res, _, err := n.ApplyWithIndex(ctx, c)
	return res, err
}

// ApplyWithIndex is Apply that also returns the command's log index, for
// WaitApplied: a follower's own FSM may not have applied it yet.
func (n *Node) ApplyWithIndex(ctx context.Context, c *queue.Command) (queue.ApplyResult, uint64, error) {
	if c == nil {
		return queue.ApplyResult{}, 0, errors.New("cluster: nil command")
	}
	data, err := c.Encode()
	if err != nil {
		return queue.ApplyResult{}, 0, err
	}
	rep, err := n.toLeader(ctx, protoForward, &request{Op: opApply, Data: data})
	if err != nil {
		return queue.ApplyResult{}, 0, err
	}
	res := rep.result()
	return res, rep.Index, res.Err
}

// WaitApplied blocks until this node's FSM has applied the log entry at
// index (as returned by ApplyWithIndex), or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	return n.fsm.wait(ctx, index)
}

// Barrier blocks until this node's FSM reflects every command committed
// before the call, wherever it was proposed: the leader applies a barrier
// and names its applied index, then this node waits for that index.
func (n *Node) Barrier(ctx context.Context) error {
	ctx, cancel := n.withDeadline(ctx)
	defer cancel()
	rep, err := n.toLeader(ctx, protoMember, &request{Op: opBarrier})
	if err != nil {
		return err
	}
	return n.fsm.wait(ctx, rep.Index)
}

// WaitLeader blocks until the cluster has a leader or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: no leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// IsLeader reports whether this node leads the cluster.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Raft exposes the underlying Raft instance for status reports.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Addr is the cluster address this node advertises ("local:NAME" for a
// single node without listener).
func (n *Node) Addr() string { return n.addr }

// Shutdown stops Raft, the listener and the stores. Later calls return the
// first call's result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.cancel()
		if n.raft != nil {
			n.shutdownErr = n.raft.Shutdown().Error()
		}
		n.wg.Wait()
		n.close()
	})
	return n.shutdownErr
}

func (n *Node) close() {
	n.cancel()
	if n.cfg.Listener != nil { // Start failed before the mux took it over
		n.cfg.Listener.Close()
	}
	if n.closeTr != nil {
		n.closeTr.Close()
	}
	if n.fwd != nil {
		n.fwd.close()
	}
	n.jobConns.closeAll()
	if n.mux != nil {
		n.mux.close()
	}
	if n.wal != nil {
		n.wal.Close()
	}
	if n.meta != nil {
		// Releases the file lock, so the node can be opened again in this
		// process (tests, an in-process restart).
		n.meta.Close()
	}
}

// withDeadline gives ctx the default deadline if it has none.
func (n *Node) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, orDefault(n.cfg.ApplyTimeout, defaultApplyTimeout))
}
