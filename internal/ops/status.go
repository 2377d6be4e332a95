package ops

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/showq"
	"github.com/yubin-mta/yubin/queue"
)

// Status is /status.json: everything the status page shows.
type Status struct {
	Node        string       `json:"node"`
	Version     string       `json:"version"`
	Commit      string       `json:"commit"`
	Generated   time.Time    `json:"generated"`
	Readiness   Readiness    `json:"readiness"`
	Cluster     ClusterView  `json:"cluster"`
	Members     []MemberView `json:"members"`
	Queue       QueueView    `json:"queue"`
	Qshape      string       `json:"qshape"`
	Scheduler   string       `json:"scheduler"` // node whose destinations are shown; "" if none
	SchedLocal  bool         `json:"scheduler_local"`
	Dests       []DestView   `json:"destinations"`
	Deferrals   []Deferral   `json:"deferrals"`
	Throughput  Throughput   `json:"throughput"`
	SMTPSession int          `json:"smtpd_sessions"`
}

// ClusterView is this node's Raft state.
type ClusterView struct {
	State        string `json:"state"`
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// MemberView is one member as it reports itself.
type MemberView struct {
	Name               string  `json:"name"`
	Addr               string  `json:"addr"`
	Voter              bool    `json:"voter"`
	Leader             bool    `json:"leader"`
	Self               bool    `json:"self"`
	Reachable          bool    `json:"reachable"`
	Healthy            bool    `json:"healthy"`
	State              string  `json:"state,omitempty"`
	LastContactSeconds float64 `json:"last_contact_seconds"` // since it heard from the leader; 0 on the leader
	AppliedIndex       uint64  `json:"applied_index"`
	Lag                uint64  `json:"lag"` // highest known commit index minus its applied index
	Error              string  `json:"error,omitempty"`
}

// QueueView counts the queue.
type QueueView struct {
	Total            int            `json:"total"`
	ByState          map[string]int `json:"by_state"`
	OldestAgeSeconds float64        `json:"oldest_age_seconds"`
	ByDomain         []DomainCount  `json:"by_domain"`
}

// DomainCount is the pending recipients of one domain per queue state.
type DomainCount struct {
	Domain  string         `json:"domain"`
	Total   int            `json:"total"`
	ByState map[string]int `json:"by_state"`
}

// DestView is one scheduler destination.
type DestView struct {
	Transport string `json:"transport"`
	Nexthop   string `json:"nexthop"`
	Active    int    `json:"active"`
	Limit     int    `json:"limit"`
	Queued    int    `json:"queued"`
	Dead      bool   `json:"dead"`
	Reason    string `json:"reason,omitempty"`
}

// queueStates are the queues in Postfix's order.
var queueStates = []queue.State{queue.Incoming, queue.Active, queue.Deferred, queue.Hold}

// maxDomains bounds the status page's per-domain table and qshape.
const maxDomains = 20

// summarizeQueue counts msgs by state and by recipient domain.
func summarizeQueue(msgs []queue.Message, now time.Time) QueueView {
	v := QueueView{Total: len(msgs), ByState: map[string]int{}}
	for _, s := range queueStates {
		v.ByState[string(s)] = 0
	}
	domains := map[string]*DomainCount{}
	for _, m := range msgs {
		v.ByState[string(m.State)]++
		if age := now.Sub(m.Arrival).Seconds(); age > v.OldestAgeSeconds {
			v.OldestAgeSeconds = age
		}
		for _, r := range m.Recipients {
			if r.Status.Final() {
				continue
			}
			d := domainOf(r.Addr)
			dc := domains[d]
			if dc == nil {
				dc = &DomainCount{Domain: d, ByState: map[string]int{}}
				domains[d] = dc
			}
			dc.Total++
			dc.ByState[string(m.State)]++
		}
	}
	for _, dc := range domains {
		v.ByDomain = append(v.ByDomain, *dc)
	}
	sort.Slice(v.ByDomain, func(i, j int) bool {
		a, b := v.ByDomain[i], v.ByDomain[j]
		if a.Total != b.Total {
			return a.Total > b.Total
		}
		return a.Domain < b.Domain
	})
	if len(v.ByDomain) > maxDomains {
		v.ByDomain = v.ByDomain[:maxDomains]
	}
	return v
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return "localhost"
}

// qshapeText is qshape(1) over the incoming, active and deferred queues.
func qshapeText(msgs []queue.Message, now time.Time) string {
	var pending []queue.Message
	for _, m := range msgs {
		if m.State != queue.Hold {
			pending = append(pending, m)
		}
	}
	var b bytes.Buffer
	if err := showq.Qshape(&b, pending, showq.QshapeOptions{Now: now, MaxDomains: maxDomains}); err != nil {
		return "qshape: " + err.Error()
	}
	return b.String()
}

// peerTimeout bounds one member's answer; a frozen member must not stall
// the page or a scrape for longer.
const peerTimeout = time.Second

// peerCacheTTL is how long the members' answers are reused: the page polls
// every 2 s and Prometheus scrapes on its own schedule.
const peerCacheTTL = 1500 * time.Millisecond

// peerCache asks every other member for its status, at most once per TTL.
type peerCache struct {
	src Source
	now func() time.Time

	mu      sync.Mutex // held while asking, so concurrent callers share one round
	at      time.Time
	members map[string]peerAnswer
}

type peerAnswer struct {
	st  cluster.Status
	err error
}

// get returns the answers of the members of self, keyed by name.
func (c *peerCache) get(ctx context.Context, self cluster.Status) map[string]peerAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.members != nil && c.now().Sub(c.at) < peerCacheTTL {
		return c.members
	}
	out := map[string]peerAnswer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range self.Members {
		if m.Name == self.Node || m.Addr == "" {
			continue
		}
		wg.Add(1)
		go func(name, addr string) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, peerTimeout)
			defer cancel()
			st, err := c.src.PeerStatus(pctx, addr)
			mu.Lock()
			out[name] = peerAnswer{st: st, err: err}
			mu.Unlock()
		}(m.Name, m.Addr)
	}
	wg.Wait()
	c.members, c.at = out, c.now()
	return out
}

// memberViews combines this node's status with the members' own answers.
func memberViews(self cluster.Status, peers map[string]peerAnswer, now time.Time, maxContact time.Duration) []MemberView {
	commit := self.CommitIndex
	for _, p := range peers {
		if p.err == nil && p.st.CommitIndex > commit {
			commit = p.st.CommitIndex
		}
	}
	var out []MemberView
	for _, m := range self.Members {
		v := MemberView{Name: m.Name, Addr: m.Addr, Voter: m.Voter, Leader: m.Leader, Self: m.Name == self.Node}
		st := self
		if !v.Self {
			p, ok := peers[m.Name]
			switch {
			case !ok:
				v.Error = "not asked"
			case p.err != nil:
				v.Error = p.err.Error()
			}
			if v.Error != "" {
				out = append(out, v)
				continue
			}
			st = p.st
		}
		v.Reachable = true
		v.State = st.State
		v.AppliedIndex = st.AppliedIndex
		if commit > st.AppliedIndex {
			v.Lag = commit - st.AppliedIndex
		}
		if !st.LastContact.IsZero() {
			v.LastContactSeconds = now.Sub(st.LastContact).Seconds()
		}
		v.Healthy = CheckReady(st, now, maxContact).Ready
		out = append(out, v)
	}
	return out
}
