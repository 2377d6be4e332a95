// Package actors is yubin's delivery scheduler, the counterpart of Postfix's
// qmgr(8), built on protoactor-go.
//
// A Scheduler watches the replicated queue (through the FSM's event hook and
// its own timers) and activates messages that are due: Incoming ones, and
// Deferred ones whose next attempt time has come, at most
// qmgr_message_active_limit at a time. Activation is a committed CmdActivate
// naming this node.
//
// Each active message gets a queue-entry actor. It resolves every unfinished
// recipient through the Router, groups recipients by (transport, nexthop),
// cuts the groups into jobs of at most the transport's recipient limit and
// hands them to destination actors. Results come back per job; each job's
// results are committed as one CmdResult before they are logged, so a line
// saying status=sent in the mail log is always backed by the queue. When all
// jobs are done the entry either sees the message removed (every recipient
// final) or commits a CmdDefer with Postfix's backoff, expires it, and asks
// the Notifier for bounce, delay and success notices.
//
// One destination actor per (transport, nexthop) owns a FIFO of jobs from
// all entries and decides when a job may start: the concurrency window (slow
// start from the initial concurrency up to the limit, shrinking on
// connection-level failures), the rate delay, the transport-wide process
// limit (master.cf maxproc), and the dead-destination state that suspends
// every queued job after too many failed cohorts. The decisions live in
// destPolicy, a plain struct driven by an explicit clock; the actors only
// move messages around it. Deliveries run in goroutines whose results come
// back as actor messages, so an actor never blocks on the network.
//
// Delivery is at-least-once: a message found Active for this node at start
// (a crash between a delivery and its commit) is delivered again.
package actors
