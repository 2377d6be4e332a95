// Package cluster runs the Raft node that replicates the queue: log, stable
// and snapshot stores on disk, the authenticated link between nodes,
// bootstrap and membership, and the one call the rest of yubin uses to
// change the queue, Apply, which returns only once the change is committed
// on a majority. A follower forwards Apply to the leader.
//
// The link is one TLS 1.3 listener per node. Both ends present certificates
// signed by a CA derived from the cluster secret, so only holders of the
// secret can talk to a node at all. After the handshake one protocol byte
// selects Raft traffic or a yubin request (forwarded apply, membership,
// status, or a delivery job the leader hands to a follower under a lease).
// DESIGN.md describes the protocol and its guarantees.
//
// A single node without a cluster address is a one-voter cluster with an
// in-memory transport: the same code path, the same durable log.
package cluster
