package ops

import (
	"fmt"
	"time"

	"github.com/yubin-mta/yubin/cluster"
)

// DefaultMaxLeaderContact is how long a follower may go without hearing
// from the leader and still call itself ready. Raft's heartbeats come many
// times a second; a few seconds of silence means the leader or the network
// is gone and a commit would time out.
const DefaultMaxLeaderContact = 5 * time.Second

// Readiness is the answer of /readyz.
type Readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

// CheckReady decides whether the node can accept mail: it leads (Raft
// steps a leader down once it loses contact with the majority), or it
// follows a known leader it heard from within maxContact. A candidate, a
// node without a leader, or one that is shutting down is not ready.
func CheckReady(st cluster.Status, now time.Time, maxContact time.Duration) Readiness {
	switch st.State {
	case "Leader":
		return Readiness{Ready: true, Reason: "leader"}
	case "Follower":
	default:
		return Readiness{Reason: fmt.Sprintf("raft state %s", st.State)}
	}
	if st.Leader == "" {
		return Readiness{Reason: "no leader known"}
	}
	if st.LastContact.IsZero() {
		return Readiness{Reason: fmt.Sprintf("never heard from leader %s", st.Leader)}
	}
	if age := now.Sub(st.LastContact); age > maxContact {
		return Readiness{Reason: fmt.Sprintf("last contact with leader %s %s ago", st.Leader, age.Round(time.Millisecond))}
	}
	return Readiness{Ready: true, Reason: "following " + st.Leader}
}
