package ops

import (
	"context"
	"runtime"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// liveCollector reads the queue, the scheduler and Raft at scrape time.
type liveCollector struct {
	s *Server
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descBuildInfo    = desc("yubin_build_info", "Always 1; the labels name the build.", "version", "commit", "goversion")
	descReady        = desc("yubin_ready", "1 when /readyz answers 200: the node is in a quorum with a leader and accepts mail.")
	descQueue        = desc("yubin_queue_messages", "Messages in the queue by state (the whole cluster's queue, as every node holds it).", "state")
	descQueueOldest  = desc("yubin_queue_oldest_message_age_seconds", "Age of the oldest message in the queue; 0 when it is empty.")
	descSchedRunning = desc("yubin_scheduler_running", "1 on the node that runs the delivery scheduler (the Raft leader).")
	descDestActive   = desc("yubin_destination_active_sessions", "Deliveries running to a destination.", "transport", "nexthop")
	descDestRcpts    = desc("yubin_destination_recipients_in_flight", "Recipients of the deliveries running to a destination.", "transport", "nexthop")
	descDestLimit    = desc("yubin_destination_concurrency_limit", "A destination's current concurrency window.", "transport", "nexthop")
	descDestQueued   = desc("yubin_destination_queued_jobs", "Jobs waiting for a delivery slot to a destination.", "transport", "nexthop")
	descDestDead     = desc("yubin_destination_dead", "1 while delivery to a destination is suspended after repeated failures.", "transport", "nexthop")
	descIsLeader     = desc("yubin_raft_is_leader", "1 when this node is the Raft leader.")
	descTerm         = desc("yubin_raft_term", "Current Raft term.")
	descCommit       = desc("yubin_raft_commit_index", "Raft commit index as this node knows it.")
	descApplied      = desc("yubin_raft_applied_index", "Last Raft index handed to the queue.")
	descLastLog      = desc("yubin_raft_last_log_index", "Last index in this node's Raft log.")
	descMembers      = desc("yubin_raft_members", "Servers in the Raft configuration.", "suffrage")
	descLastContact  = desc("yubin_raft_last_contact_seconds", "Seconds since this follower last heard from the leader; 0 on the leader.")
	descPeerUp       = desc("yubin_raft_peer_up", "1 when the member answered a status request.", "peer")
	descPeerContact  = desc("yubin_raft_peer_last_contact_seconds", "Seconds since the member last heard from the leader, as it reports; 0 for the leader.", "peer")
	descPeerApplied  = desc("yubin_raft_peer_applied_index", "The member's applied index, as it reports.", "peer")
	descSnapIndex    = desc("yubin_raft_last_snapshot_index", "Raft index of the latest snapshot.")
	descSnapTerm     = desc("yubin_raft_last_snapshot_term", "Raft term of the latest snapshot.")
	descSnapBytes    = desc("yubin_raft_snapshot_bytes", "Size of the last snapshot this node wrote.")
	descSnapSeconds  = desc("yubin_raft_snapshot_duration_seconds", "How long writing the last snapshot took.")
)

func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuildInfo, descReady, descQueue, descQueueOldest, descSchedRunning,
		descDestActive, descDestRcpts, descDestLimit, descDestQueued, descDestDead, descIsLeader, descTerm, descCommit, descApplied,
		descLastLog, descMembers, descLastContact, descPeerUp, descPeerContact, descPeerApplied, descSnapIndex, descSnapTerm} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	now := s.now()
	gauge(ch, descBuildInfo, 1, s.opts.Version, s.opts.Commit, runtime.Version())

	self := s.opts.Source.Cluster()
	gauge(ch, descReady, boolValue(s.readiness(self, now).Ready))

	q := summarizeQueue(s.opts.Source.Messages(), now)
	for _, st := range queueStates {
		gauge(ch, descQueue, float64(q.ByState[string(st)]), string(st))
	}
	gauge(ch, descQueueOldest, q.OldestAgeSeconds)

	dests, running := s.opts.Source.Destinations()
	gauge(ch, descSchedRunning, boolValue(running))
	for _, d := range dests {
		gauge(ch, descDestActive, float64(d.Active), d.Transport, d.Nexthop)
		gauge(ch, descDestRcpts, float64(d.Recipients), d.Transport, d.Nexthop)
		gauge(ch, descDestLimit, float64(d.Limit), d.Transport, d.Nexthop)
		gauge(ch, descDestQueued, float64(d.Queued), d.Transport, d.Nexthop)
		gauge(ch, descDestDead, boolValue(d.Dead), d.Transport, d.Nexthop)
	}

	gauge(ch, descIsLeader, boolValue(self.State == "Leader"))
	gauge(ch, descTerm, float64(self.Term))
	gauge(ch, descCommit, float64(self.CommitIndex))
	gauge(ch, descApplied, float64(self.AppliedIndex))
	gauge(ch, descLastLog, float64(self.LastLogIndex))
	voters, nonvoters := 0, 0
	for _, m := range self.Members {
		if m.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	gauge(ch, descMembers, float64(voters), "voter")
	gauge(ch, descMembers, float64(nonvoters), "nonvoter")
	if self.State != "Leader" && !self.LastContact.IsZero() {
		gauge(ch, descLastContact, now.Sub(self.LastContact).Seconds())
	} else if self.State == "Leader" {
		gauge(ch, descLastContact, 0)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*peerTimeout)
	defer cancel()
	for _, m := range memberViews(self, s.peers.get(ctx, self), now, s.opts.MaxLeaderContact) {
		gauge(ch, descPeerUp, boolValue(m.Reachable), m.Name)
		if !m.Reachable {
			continue
		}
		gauge(ch, descPeerContact, m.LastContactSeconds, m.Name)
		gauge(ch, descPeerApplied, float64(m.AppliedIndex), m.Name)
	}

	stats := s.opts.Source.RaftStats()
	for key, d := range map[string]*prometheus.Desc{"last_snapshot_index": descSnapIndex, "last_snapshot_term": descSnapTerm,
		"yubin_snapshot_bytes": descSnapBytes, "yubin_snapshot_seconds": descSnapSeconds} {
		if v, err := strconv.ParseFloat(stats[key], 64); err == nil {
			gauge(ch, d, v)
		}
	}
}
