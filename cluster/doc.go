// Package cluster runs the Raft node that replicates the queue: log, stable
// and snapshot stores on disk, the transport between nodes, bootstrap of a
// new cluster, and the one call the rest of yubin uses to change the queue,
// Apply, which returns only once the change is committed on a majority.
//
// A single node is simply a one-voter cluster: the same code path, the same
// durable log, with no listener for peers.
package cluster
