package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// label is how the summary lines name this MTA setup (compare.py pairs it
// with the Postfix runs of the same case).
const label = "yubin-cluster"

func head(o options, test string) string {
	return fmt.Sprintf("%s %s: N=%d conc=%d size=%d nodes=%d", label, test, o.n, o.conc, o.size, o.nodes)
}

// measured runs the smtp-source load and the latency probe beside it.
type measured struct {
	start   time.Time // when the load started
	acceptS float64
	probe   probe
	idle    int
}

func measure(o options, nodes []*node, withProbe bool) (measured, error) {
	var m measured
	m.idle = waitIdle(o.idleMin, o.idleWait)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	stop := make(chan struct{})
	probed := make(chan struct{})
	if withProbe {
		go func() { m.probe.run(nodes, o.size, stop); close(probed) }()
	} else {
		close(probed)
	}
	m.start = time.Now()
	err := runSources(ctx, nodes, o.root, o.n, o.conc, o.size)
	m.acceptS = time.Since(m.start).Seconds()
	close(stop)
	<-probed
	return m, err
}

func (m measured) fields(n int) string {
	return fmt.Sprintf("accept_s=%.3f accept_msgs_per_s=%.1f", m.acceptS, float64(n)/m.acceptS)
}

func (p *probe) fields() string {
	return fmt.Sprintf("p50_ms=%.1f p99_ms=%.1f probe_msgs=%d probe_failed=%d",
		ms(percentile(p.latencies, 50)), ms(percentile(p.latencies, 99)), len(p.latencies), p.failed)
}

// runAccept measures twice on the same cluster: first the throughput with
// smtp-source alone, the load Postfix gets; then the same load again with
// the probe beside it for the time to 250 (its messages would otherwise be
// work the throughput does not count).
func runAccept(o options) (string, error) {
	nodes, err := newCluster(o, clusterSpec{extraMain: o.extraMain})
	if err != nil {
		return "", err
	}
	defer stopCluster(nodes)
	if err := startCluster(nodes); err != nil {
		return "", err
	}
	m, err := measure(o, nodes, false)
	if err != nil {
		return head(o, "accept-only") + " FAILED", err
	}
	lat, err := measure(o, nodes, true)
	if err != nil {
		return head(o, "accept-only") + " FAILED", err
	}
	want := 2*o.n + len(lat.probe.latencies)
	// Every acknowledged message must be held, as every node sees it.
	held := make([]int, len(nodes))
	for i, n := range nodes {
		if held[i], err = n.queued("hold"); err != nil {
			return head(o, "accept-only") + " FAILED", err
		}
	}
	line := fmt.Sprintf("%s %s %s probe_pass_msgs_per_s=%.1f held=%d want=%d held_per_node=%s pre_idle_pct=%d",
		head(o, "accept-only"), m.fields(o.n), lat.probe.fields(), float64(o.n)/lat.acceptS,
		held[0], want, joinInts(held), min(m.idle, lat.idle))
	for i, h := range held {
		if h < want {
			return line + " FAILED", fmt.Errorf("%s holds %d messages, %d were acknowledged", nodes[i].name, h, want)
		}
	}
	return line, nil
}

// relayCluster starts smtp-sink (storing every message when dump is set)
// and a cluster that relays to it, and returns once the cluster delivers:
// a new leader waits yubin_delivery_takeover_delay before it does, so a
// first message must have arrived. stop ends both.
func relayCluster(o options, dump bool) (s *sink, nodes []*node, stop func(), err error) {
	if s, err = startSink(o.root, dump); err != nil {
		return nil, nil, nil, err
	}
	stop = s.stop
	if nodes, err = newCluster(o, clusterSpec{relayhost: "[" + strings.Replace(s.addr, ":", "]:", 1), metrics: true, extraMain: o.extraMain}); err != nil {
		stop()
		return nil, nil, nil, err
	}
	stop = func() { stopCluster(nodes); s.stop() }
	if err = startCluster(nodes); err == nil {
		var code int
		if _, code, err = transaction(nodes[0].smtp, warmUpID, payload(o.size)); err == nil && code != 250 {
			err = fmt.Errorf("server said %d", code)
		}
		if err == nil {
			_, err = s.waitCount(1, time.Now().Add(60*time.Second))
		}
		if err != nil {
			err = fmt.Errorf("warm-up message: %w", err)
		}
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return s, nodes, stop, nil
}

const warmUpID = "<warm-up@ybbench.invalid>"

func runRelay(o options) (string, error) {
	s, nodes, stop, err := relayCluster(o, false)
	if err != nil {
		return "", err
	}
	defer stop()
	m, err := measure(o, nodes, false)
	if err != nil {
		return head(o, "relay") + " FAILED", err
	}
	done, err := s.waitCount(1+o.n, time.Now().Add(o.timeout))
	if err != nil {
		return fmt.Sprintf("%s %s e2e=TIMEOUT", head(o, "relay"), m.fields(o.n)), err
	}
	e2e := done.Sub(m.start).Seconds()
	time.Sleep(500 * time.Millisecond) // as the shared harness: let the queue drop the last entries
	left, err := nodes[0].queued("")
	if err != nil {
		return head(o, "relay") + " FAILED", err
	}
	line := fmt.Sprintf("%s %s e2e_s=%.3f e2e_msgs_per_s=%.1f delivered=%d queue_after=%d pre_idle_pct=%d",
		head(o, "relay"), m.fields(o.n), e2e, float64(o.n)/e2e, s.count()-1, left, m.idle)
	return line, nil
}

func runFailover(o options) (string, error) {
	s, nodes, stop, err := relayCluster(o, true)
	if err != nil {
		return "", err
	}
	defer stop()
	idle := waitIdle(o.idleMin, o.idleWait)
	a := &acked{ids: map[string]bool{warmUpID: true}}
	loaded := make(chan struct{})
	t0 := time.Now()
	go func() { sendAll(nodes, o.n, o.conc, o.size, t0.Add(o.timeout), a); close(loaded) }()

	// Watch the sink's counter: when deliveries resume after the kill, and
	// the longest time without a delivery.
	type sample struct {
		at    time.Time
		count int
	}
	var samples []sample
	watching := make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			samples = append(samples, sample{time.Now(), s.count()})
			select {
			case <-stopWatch:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	k, err := leaderOf(nodes, 10*time.Second)
	if err != nil {
		close(stopWatch)
		<-loaded
		return head(o, "failover") + " FAILED", err
	}
	// Until a third of the load is acknowledged, read the leader's gauge of
	// deliveries running cluster-wide; the largest value of the last half
	// second stands for the deliveries in flight at the kill (a single
	// reading misses jobs between their result and its commit).
	var gauge [10]int
	for i := 0; a.count() < 1+o.n/3 && time.Since(t0) < o.timeout; i++ {
		gauge[i%len(gauge)] = scrapeSum(nodes[k].metrics, "yubin_destination_recipients_in_flight")
		time.Sleep(50 * time.Millisecond)
	}
	inFlight := slices.Max(gauge[:])
	ackedAtKill := a.count()
	killedAt := time.Now()
	nodes[k].stop(syscall.SIGKILL)
	deliveredAtKill := s.count()
	<-loaded
	loadS := time.Since(t0).Seconds()
	if err := nodes[k].spawn(); err != nil {
		close(stopWatch)
		return head(o, "failover") + " FAILED", err
	}
	if err := nodes[k].waitReady(60 * time.Second); err != nil {
		close(stopWatch)
		return head(o, "failover") + " FAILED", err
	}
	ackedN := a.count()
	// Wait for every acknowledged message to arrive.
	var got map[string]int
	deadline := time.Now().Add(o.timeout)
	lost := 0
	for {
		got = s.received()
		lost = 0
		for id := range a.ids {
			if got[id] == 0 {
				lost++
			}
		}
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stopWatch)
	<-watching
	dups := 0
	for _, c := range got {
		dups += max(0, c-1)
	}
	// Deliveries resume when the counter passes its value at the kill by
	// more than the in-flight deliveries that may still finish on the
	// surviving nodes; the stall is the longest run of samples without
	// growth after the kill, until the load was delivered.
	var resume, stall time.Duration
	lastGrowth := killedAt
	prev := -1
	for _, sm := range samples {
		if sm.at.Before(killedAt) {
			continue
		}
		if resume == 0 && sm.count > deliveredAtKill+max(5, inFlight) {
			resume = sm.at.Sub(killedAt)
		}
		if prev >= 0 && sm.count > prev {
			stall = max(stall, sm.at.Sub(lastGrowth))
			lastGrowth = sm.at
		}
		if sm.count >= ackedN {
			break
		}
		prev = sm.count
	}
	// Duplicates are measured against the deliveries in flight at the kill
	// (the leader's gauge): only those may repeat. queued_at_kill is what
	// was acknowledged but not yet delivered.
	per1000 := "-"
	if inFlight > 0 {
		per1000 = fmt.Sprintf("%.0f", 1000*float64(dups)/float64(inFlight))
	}
	line := fmt.Sprintf("%s killed=leader load_s=%.3f acked=%d acked_at_kill=%d delivered_at_kill=%d queued_at_kill=%d lost=%d duplicates=%d deliveries_in_flight=%d dups_per_1000_in_flight=%s resume_s=%.2f longest_stall_s=%.2f p50_ms=%.1f p99_ms=%.1f pre_idle_pct=%d",
		head(o, "failover"), loadS, ackedN-1, ackedAtKill-1, deliveredAtKill-1, ackedAtKill-deliveredAtKill, lost, dups, inFlight, per1000,
		resume.Seconds(), stall.Seconds(), ms(percentile(a.lat, 50)), ms(percentile(a.lat, 99)), idle)
	if lost > 0 || ackedN < o.n+1 {
		return line + " FAILED", fmt.Errorf("%d acknowledged messages lost, %d of %d acknowledged", lost, ackedN-1, o.n)
	}
	return line, nil
}

// scrapeSum adds up every sample of a metric on a node's /metrics.
func scrapeSum(addr, metric string) int {
	if addr == "" {
		return 0
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return int(sum)
}

// percentile is the p-th percentile (nearest rank) of ds, 0 when empty.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// waitIdle returns the % of CPU time that was idle over the last second,
// waiting up to wait for it to reach min (as the shared harness's wait_idle).
func waitIdle(minPct int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		idle := idlePct(time.Second)
		if idle >= minPct || time.Now().After(deadline) {
			if idle < minPct {
				fmt.Fprintf(os.Stderr, "cluster: measuring with the machine only %d%% idle\n", idle)
			}
			return idle
		}
	}
}

func idlePct(over time.Duration) int {
	a := cpuTimes()
	time.Sleep(over)
	b := cpuTimes()
	if len(a) < 5 || len(b) < 5 {
		return 100
	}
	var total, idle uint64
	for i := range a {
		if i < len(b) && i < 8 {
			total += b[i] - a[i]
		}
	}
	idle = (b[3] - a[3]) + (b[4] - a[4])
	if total == 0 {
		return 100
	}
	return int(100*idle/total + 0)
}

// cpuTimes is the first line of /proc/stat: user nice system idle iowait ...
func cpuTimes() []uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var out []uint64
	for _, f := range strings.Fields(line)[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}
