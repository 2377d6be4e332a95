package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/yubin-mta/yubin/queue"
)

// Peer is one voter of the initial cluster.
type Peer struct {
	Name string // node name, the Raft server ID
	Addr string // host:port of its cluster listener
}

// Config describes this node.
type Config struct {
	NodeName string
	Dir      string // Raft data: log, stable store, snapshots
	// BindAddr is the cluster listener. Empty means a single node with no
	// network transport at all.
	BindAddr string
	Peers    []Peer // initial voters, this node included; empty = just this node
	Logger   hclog.Logger

	// Timing; zero values take defaults tuned for a LAN.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
}

// Node is a running Raft member holding the queue FSM.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	fsm       *queue.FSM
	wal       *wal.WAL
	transport raft.Transport
	closeTr   io.Closer
}

// Start opens (or creates) the node's state under cfg.Dir and starts Raft.
// A node without existing state bootstraps the cluster from cfg.Peers.
func Start(cfg Config, fsm *queue.FSM) (*Node, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("cluster: node name is empty")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("cluster: raft directory: %w", err)
	}
	w, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.WithLogger(cfg.Logger.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft log %s: %w", cfg.Dir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, cfg.Logger.Named("snapshot"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cluster: snapshot store: %w", err)
	}
	n := &Node{cfg: cfg, fsm: fsm, wal: w}
	localAddr := raft.ServerAddress(cfg.BindAddr)
	if cfg.BindAddr == "" {
		localAddr = raft.ServerAddress("local:" + cfg.NodeName)
		_, tr := raft.NewInmemTransport(localAddr)
		n.transport = tr
	} else {
		tr, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, nil, 8, 10*time.Second, cfg.Logger.Named("transport"))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.BindAddr, err)
		}
		n.transport, n.closeTr = tr, tr
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.Logger = cfg.Logger
	rc.HeartbeatTimeout = orDefault(cfg.HeartbeatTimeout, 500*time.Millisecond)
	rc.ElectionTimeout = orDefault(cfg.ElectionTimeout, 500*time.Millisecond)
	rc.LeaderLeaseTimeout = rc.HeartbeatTimeout / 2
	rc.CommitTimeout = 5 * time.Millisecond
	// Group commit: the leader writes every queued Apply in one batch, one fsync.
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = 4096
	rc.TrailingLogs = 2048

	has, err := raft.HasExistingState(w, w, snaps)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("cluster: inspect raft state: %w", err)
	}
	if !has {
		servers := []raft.Server{{ID: rc.LocalID, Address: localAddr, Suffrage: raft.Voter}}
		if len(cfg.Peers) > 0 {
			servers = servers[:0]
			for _, p := range cfg.Peers {
				servers = append(servers, raft.Server{ID: raft.ServerID(p.Name), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter})
			}
		}
		if err := raft.BootstrapCluster(rc, w, w, snaps, n.transport, raft.Configuration{Servers: servers}); err != nil {
			n.close()
			return nil, fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, fsm, w, w, snaps, n.transport)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	return n, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ErrNoQuorum means the change could not be committed now; the SMTP layer
// answers 4xx so the client tries again later.
var ErrNoQuorum = errors.New("cluster: no quorum")

// Apply proposes a queue command and waits until it is committed and applied.
func (n *Node) Apply(ctx context.Context, c *queue.Command) (queue.ApplyResult, error) {
	data, err := c.Encode()
	if err != nil {
		return queue.ApplyResult{}, err
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return queue.ApplyResult{}, fmt.Errorf("%w: %v", ErrNoQuorum, err)
	}
	res, _ := f.Response().(queue.ApplyResult)
	return res, res.Err
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

// Shutdown stops Raft and closes the stores.
func (n *Node) Shutdown() error {
	var err error
	if n.raft != nil {
		err = n.raft.Shutdown().Error()
	}
	n.close()
	return err
}

func (n *Node) close() {
	if n.closeTr != nil {
		n.closeTr.Close()
	}
	if n.wal != nil {
		n.wal.Close()
	}
}
