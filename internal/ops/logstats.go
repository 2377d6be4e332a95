package ops

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/yubin-mta/yubin/internal/ops/logtap"
)

// delayStages name the four parts of Postfix's delays=a/b/c/d, with the
// label values postfix_exporter uses.
var delayStages = [4]string{"before_queue_manager", "queue_manager", "connection_setup", "transmission"}

// delayBuckets span a local delivery (milliseconds) to a message that
// waited in the deferred queue for a day.
var delayBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400}

// LogStats counts mail flow from the mail log. Tap is the maillog tap; it
// must be installed before the logger is shared (maillog.Logger.SetTap).
type LogStats struct {
	accepted    *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	delivered   *prometheus.CounterVec
	deferred    *prometheus.CounterVec
	bounced     *prometheus.CounterVec
	expired     prometheus.Counter
	delays      *prometheus.HistogramVec
	connections prometheus.Counter
	sessions    prometheus.Gauge
	reloads     *prometheus.CounterVec

	activity *activity
	commits  *prometheus.HistogramVec
}

// NewLogStats returns empty counters. now is the clock of the throughput
// chart and the deferral list; nil means time.Now.
func NewLogStats(now func() time.Time) *LogStats {
	if now == nil {
		now = time.Now
	}
	s := &LogStats{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yubin_messages_accepted_total",
			Help: "Messages given a queue ID by this node: smtpd client= and pickup uid= log lines.",
		}, []string{"service"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yubin_messages_rejected_total",
			Help: "SMTP commands rejected by this node (smtpd reject: log lines), by reason class.",
		}, []string{"class"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yubin_messages_delivered_total",
			Help: "Recipients delivered (status=sent log lines), by transport.",
		}, []string{"transport"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yubin_messages_deferred_total",
			Help: "Delivery attempts deferred (status=deferred log lines), by transport.",
		}, []string{"transport"}),
		bounced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yubin_messages_bounced_total",
			Help: "Recipients bounced (status=bounced log lines), by transport.",
		}, []string{"transport"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yubin_messages_expired_total",
			Help: "Messages returned to the sender after maximal_queue_lifetime (status=expired).",
		}),
		delays: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "yubin_delivery_delay_seconds",
			Help:    "The delays=a/b/c/d parts of delivery log lines: before the queue manager, in it, connection setup, transmission.",
			Buckets: delayBuckets,
		}, []string{"transport", "stage"}),
		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yubin_smtpd_connections_total",
			Help: "SMTP connections accepted by this node's smtpd (connect from lines).",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "yubin_smtpd_sessions",
			Help: "SMTP sessions open now (connect from minus disconnect from).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yubin_config_reloads_total",
			Help: "Reloads (SIGHUP, yubin reload) by result: success or failure (the old configuration stays).",
		}, []string{"result"}),
		commits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "yubin_raft_apply_seconds",
			Help:    "Time to commit a queue command through Raft (from the proposal to the FSM's answer), by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"result"}),
		activity: newActivity(now),
	}
	// Every class and the usual services exist from the start, so a rate()
	// over them has a zero to start from.
	for _, c := range logtap.RejectClasses() {
		s.rejected.WithLabelValues(c)
	}
	s.accepted.WithLabelValues("smtpd")
	s.accepted.WithLabelValues("pickup")
	s.reloads.WithLabelValues("success")
	s.reloads.WithLabelValues("failure")
	return s
}

// Tap reads one mail log line (maillog.Logger.SetTap).
func (s *LogStats) Tap(service, msg string) {
	ev := logtap.Parse(service, msg)
	switch ev.Kind {
	case logtap.Connect:
		s.connections.Inc()
		s.sessions.Inc()
	case logtap.Disconnect:
		s.sessions.Dec()
	case logtap.Accepted:
		s.accepted.WithLabelValues(service).Inc()
		s.activity.add(flowAccepted)
	case logtap.Rejected:
		s.rejected.WithLabelValues(ev.Class).Inc()
		s.activity.add(flowRejected)
	case logtap.Expired:
		s.expired.Inc()
	case logtap.Delivery:
		s.delivery(ev)
	case logtap.Reloaded:
		s.reloads.WithLabelValues("success").Inc()
	case logtap.ReloadFailed:
		s.reloads.WithLabelValues("failure").Inc()
	}
}

func (s *LogStats) delivery(ev logtap.Event) {
	switch ev.Status {
	case logtap.StatusSent:
		s.delivered.WithLabelValues(ev.Service).Inc()
		s.activity.add(flowDelivered)
	case logtap.StatusDeferred:
		s.deferred.WithLabelValues(ev.Service).Inc()
		s.activity.add(flowDeferred)
		s.activity.deferral(Deferral{QueueID: ev.QueueID, Recipient: ev.Recipient, Transport: ev.Service, Relay: ev.Relay, Reason: ev.Reason})
	case logtap.StatusBounced:
		s.bounced.WithLabelValues(ev.Service).Inc()
		s.activity.add(flowBounced)
	}
	if ev.HasDelays {
		for i, d := range ev.Delays {
			s.delays.WithLabelValues(ev.Service, delayStages[i]).Observe(d)
		}
	}
}

// collectors are the metrics for a registry.
func (s *LogStats) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.accepted, s.rejected, s.delivered, s.deferred, s.bounced, s.expired,
		s.delays, s.connections, s.sessions, s.reloads, s.commits}
}

// ObserveCommit records how long one Raft commit took; err is its outcome.
func (s *LogStats) ObserveCommit(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.commits.WithLabelValues(result).Observe(d.Seconds())
}

// Deferral is one recent status=deferred line, for the status page.
type Deferral struct {
	Time      time.Time `json:"time"`
	QueueID   string    `json:"queue_id"`
	Recipient string    `json:"to"`
	Transport string    `json:"transport"`
	Relay     string    `json:"relay"`
	Reason    string    `json:"reason"`
}

// flow is a column of the throughput chart.
type flow int

const (
	flowAccepted flow = iota
	flowDelivered
	flowDeferred
	flowBounced
	flowRejected
	flowKinds
)

// Throughput window: 30 buckets of 10 s, the last five minutes.
const (
	bucketWidth  = 10 * time.Second
	bucketCount  = 30
	maxDeferrals = 20
)

// activity keeps the last minutes of mail flow and the latest deferrals.
type activity struct {
	now func() time.Time

	mu        sync.Mutex
	buckets   [bucketCount][flowKinds]int
	newest    int64 // index (unix time / bucketWidth) of the newest bucket
	deferrals []Deferral
}

func newActivity(now func() time.Time) *activity {
	return &activity{now: now, newest: now().Unix() / int64(bucketWidth/time.Second)}
}

// advance moves the ring forward to the bucket of t, clearing the buckets
// skipped over. Called with mu held.
func (a *activity) advance(t time.Time) int {
	idx := t.Unix() / int64(bucketWidth/time.Second)
	if idx > a.newest {
		steps := idx - a.newest
		if steps > bucketCount {
			steps = bucketCount
		}
		for i := int64(1); i <= steps; i++ {
			a.buckets[(a.newest+i)%bucketCount] = [flowKinds]int{}
		}
		a.newest = idx
	}
	if a.newest-idx >= bucketCount {
		return -1 // older than the window (a clock step backwards)
	}
	return int(idx % bucketCount)
}

func (a *activity) add(f flow) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := a.advance(a.now()); i >= 0 {
		a.buckets[i][f]++
	}
}

func (a *activity) deferral(d Deferral) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d.Time = a.now()
	a.deferrals = append(a.deferrals, d)
	if len(a.deferrals) > maxDeferrals {
		a.deferrals = append(a.deferrals[:0], a.deferrals[len(a.deferrals)-maxDeferrals:]...)
	}
}

// Throughput is the mail flow per bucket, oldest bucket first.
type Throughput struct {
	Start           time.Time `json:"start"` // start of the oldest bucket
	IntervalSeconds int       `json:"interval_seconds"`
	Accepted        []int     `json:"accepted"`
	Delivered       []int     `json:"delivered"`
	Deferred        []int     `json:"deferred"`
	Bounced         []int     `json:"bounced"`
	Rejected        []int     `json:"rejected"`
}

// snapshot returns the throughput series and the deferrals, newest first.
func (a *activity) snapshot() (Throughput, []Deferral) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(a.now())
	width := int64(bucketWidth / time.Second)
	tp := Throughput{
		Start:           time.Unix((a.newest-bucketCount+1)*width, 0).UTC(),
		IntervalSeconds: int(width),
	}
	series := []*[]int{&tp.Accepted, &tp.Delivered, &tp.Deferred, &tp.Bounced, &tp.Rejected}
	for i := int64(bucketCount - 1); i >= 0; i-- {
		b := a.buckets[(a.newest-i)%bucketCount]
		for f, s := range series {
			*s = append(*s, b[f])
		}
	}
	out := make([]Deferral, 0, len(a.deferrals))
	for i := len(a.deferrals) - 1; i >= 0; i-- {
		out = append(out, a.deferrals[i])
	}
	return tp, out
}
