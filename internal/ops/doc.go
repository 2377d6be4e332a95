// Package ops is a node's operations listener (yubin_metrics_address): the
// Prometheus /metrics endpoint, /healthz and /readyz probes, and a read-only
// live status page at / that refreshes itself from /status.json.
//
// Numbers come from two places. Mail flow (accepted, rejected, delivered,
// deferred, bounced, delays, SMTP sessions) is counted from the mail log
// lines as they are written (LogStats, a maillog tap), so the metrics agree
// with grep and pflogsumm on the same log. Queue, scheduler and Raft state is
// read from the running node (Source) when it is asked for.
package ops
