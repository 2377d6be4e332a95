package ops

import (
	"context"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/queue"
)

// Source is the running node as the operations listener reads it. Every
// method must be safe to call from many goroutines at any time.
type Source interface {
	// Cluster is this node's view of the Raft cluster.
	Cluster() cluster.Status
	// PeerStatus asks another member for its own view.
	PeerStatus(ctx context.Context, addr string) (cluster.Status, error)
	// Messages lists the queue (every node holds all of it).
	Messages() []queue.Message
	// Destinations reports the scheduler's destinations and whether this
	// node runs the scheduler (only the Raft leader does).
	Destinations() ([]actors.DestStatus, bool)
	// RaftStats is hashicorp/raft's Stats map (snapshot indexes and the like).
	RaftStats() map[string]string
}
