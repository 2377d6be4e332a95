// Package queue is the mail queue as a replicated state machine.
//
// Every change to the queue — a message accepted, a recipient delivered or
// deferred, a message held, released, requeued or deleted — is a Command
// encoded into a Raft log entry. The FSM applies committed entries in log
// order on every node, so all nodes hold the same queue. Apply has no side
// effects beyond the queue's own state and body files; the scheduler learns
// about changes through the FSM's event hook.
//
// Bodies live in files under the queue directory, written (without fsync) when
// an Enqueue entry is applied: the Raft log already holds them durably, and a
// snapshot streams them from disk into the snapshot store. See DESIGN.md for the
// invariants.
package queue
