package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/control"
	"github.com/yubin-mta/yubin/internal/ops"
	"github.com/yubin-mta/yubin/internal/rewrite"
	"github.com/yubin-mta/yubin/queue"
)

// OpReload is `yubin reload` (and SIGHUP): re-read main.cf and the lookup
// tables.
const OpReload = "reload"

// Commit is the build's commit, set by the command like Version.
var Commit = "unknown"

// ReloadResult says what a reload changed.
type ReloadResult struct {
	// Applied lists the routing parameters whose new values took effect.
	Applied []string `json:"applied,omitempty"`
	// NeedRestart lists changed parameters (and "master.cf") that take
	// effect only when the node is restarted.
	NeedRestart []string `json:"need_restart,omitempty"`
}

// reloadableParams are the main.cf parameters a reload applies: they are
// read only when the address rewriter is built, so swapping the rewriter
// applies them everywhere at once. Everything else is also read by the
// SMTP server, the scheduler or the cluster at start-up and needs a restart.
var reloadableParams = map[string]bool{
	"transport_maps":    true,
	"relayhost":         true,
	"relay_transport":   true,
	"default_transport": true,
	"virtual_transport": true,
}

// opsState is the node's operations side: log-derived metrics, the HTTP
// listener of yubin_metrics_address, and reload bookkeeping.
type opsState struct {
	stats  *ops.LogStats
	server *ops.Server

	reloadMu sync.Mutex     // one reload at a time
	routing  *config.Config // where the rewriter's routing parameters came from; nil = n.cfg
}

// tapLog counts mail flow from the mail log. Start calls it as soon as the
// log is open, before anything is logged.
func (n *Node) tapLog() {
	n.ops.stats = ops.NewLogStats(nil)
	n.log.SetTap(n.ops.stats.Tap)
}

// startOps registers the reload operation and, unless
// yubin_metrics_address is empty, starts the metrics and status listener.
func (n *Node) startOps() error {
	n.ctl.Handle(OpReload, n.handleReload)
	addr := n.cfg.Get("yubin_metrics_address")
	if addr == "" {
		return nil
	}
	s, err := ops.New(ops.Options{Node: n.name, Version: Version, Commit: Commit, Source: opsSource{n}, Log: n.ops.stats})
	if err != nil {
		return err
	}
	if err := s.Listen(addr); err != nil {
		return err
	}
	n.ops.server = s
	return nil
}

// drainOps makes /readyz answer 503 while the node shuts down.
func (n *Node) drainOps() {
	if n.ops.server != nil {
		n.ops.server.SetDraining()
	}
}

// stopOps closes the operations listener.
func (n *Node) stopOps(ctx context.Context) error {
	if n.ops.server == nil {
		return nil
	}
	return n.ops.server.Shutdown(ctx)
}

// OpsAddr is the operations listener's address, "" when it is disabled.
func (n *Node) OpsAddr() string {
	if n.ops.server == nil {
		return ""
	}
	return n.ops.server.Addr()
}

// opsSource shows the node to the operations listener.
type opsSource struct{ n *Node }

func (s opsSource) Cluster() cluster.Status { return s.n.raft.Status() }

func (s opsSource) PeerStatus(ctx context.Context, addr string) (cluster.Status, error) {
	return s.n.raft.PeerStatus(ctx, addr)
}

func (s opsSource) Messages() []queue.Message { return s.n.fsm.List(nil) }

func (s opsSource) Destinations() ([]actors.DestStatus, bool) {
	sched := s.n.scheduler()
	if sched == nil {
		return nil, false
	}
	return sched.Destinations(), true
}

// RaftStats is hashicorp/raft's Stats plus the queue's last snapshot.
func (s opsSource) RaftStats() map[string]string {
	st := s.n.raft.Raft().Stats()
	if snap := s.n.fsm.LastSnapshot(); !snap.At.IsZero() {
		st["yubin_snapshot_bytes"] = strconv.FormatInt(snap.Bytes, 10)
		st["yubin_snapshot_seconds"] = strconv.FormatFloat(snap.Duration.Seconds(), 'f', -1, 64)
	}
	return st
}

// hangups starts catching SIGHUP, which would otherwise end the process.
func hangups() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadOnHangup reloads on every SIGHUP from hup until the returned
// function is called, as `postfix reload` does for Postfix.
func (n *Node) reloadOnHangup(hup chan os.Signal) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-hup:
				_, _ = n.reload() // reload logs its outcome
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

func (n *Node) handleReload(_ context.Context, c control.Caller, _ *control.Request) (any, error) {
	if !n.privileged(c) {
		return nil, errors.New("reload: permission denied")
	}
	return n.reload()
}

// reload re-reads main.cf and master.cf and rebuilds the lookup tables
// (n.reloadMaps re-opens them with the running configuration; this also
// applies changed routing parameters). Connections and deliveries in
// progress keep the tables they started with. On any error the running
// tables stay in use.
func (n *Node) reload() (ReloadResult, error) {
	n.ops.reloadMu.Lock()
	defer n.ops.reloadMu.Unlock()
	var res ReloadResult
	fail := func(err error) (ReloadResult, error) {
		n.log.Printf("master", "warning: reload failed, the running configuration stays in effect: %v", err)
		return res, fmt.Errorf("reload: %w", err)
	}
	next, _, err := config.Load(n.cfg.Directory())
	if err != nil {
		return fail(err)
	}
	routing := n.ops.routing
	if routing == nil {
		routing = n.cfg
	}
	changed, err := changedParams(routing, next)
	if err != nil {
		return fail(err)
	}
	for _, name := range changed {
		if reloadableParams[name] {
			res.Applied = append(res.Applied, name)
		}
	}
	if changed, err = changedParams(n.cfg, next); err != nil {
		return fail(err)
	}
	for _, name := range changed {
		if !reloadableParams[name] {
			res.NeedRestart = append(res.NeedRestart, name)
		}
	}
	if !sameServices(n.cfg.Services(), next.Services()) {
		res.NeedRestart = append(res.NeedRestart, "master.cf")
	}
	maps, err := routingMaps(n.cfg, next)
	if err != nil {
		return fail(err)
	}
	n.mu.Lock()
	n.maps = maps
	n.mu.Unlock()
	n.ops.routing = next
	if len(res.Applied) > 0 {
		n.log.Printf("master", "reload: applied %s", strings.Join(res.Applied, ", "))
	}
	if len(res.NeedRestart) > 0 {
		n.log.Printf("master", "warning: reload: changed %s: takes effect after a restart", strings.Join(res.NeedRestart, ", "))
	}
	n.log.Printf("master", "reload -- version %s, configuration %s", Version, n.cfg.Directory())
	return res, nil
}

// routingMaps opens every table again and builds a rewriter from the
// running configuration with the routing parameters of next.
func routingMaps(running, next *config.Config) (*mapSet, error) {
	s, err := rewriteSettings(running)
	if err != nil {
		return nil, err
	}
	ns, err := rewriteSettings(next)
	if err != nil {
		return nil, err
	}
	s.TransportMaps = ns.TransportMaps
	s.Relayhost = ns.Relayhost
	s.RelayTransport = ns.RelayTransport
	s.DefaultTransport = ns.DefaultTransport
	s.VirtualTransport = ns.VirtualTransport
	r, err := rewrite.New(s)
	if err != nil {
		return nil, err
	}
	return &mapSet{rewriter: r}, nil
}

// changedParams lists the parameters whose expanded values differ, in the
// way `postconf -x` shows them.
func changedParams(a, b *config.Config) ([]string, error) {
	av, err := paramValues(a)
	if err != nil {
		return nil, err
	}
	bv, err := paramValues(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, v := range bv {
		if old, ok := av[name]; !ok || old != v {
			out = append(out, name)
		}
	}
	for name := range av {
		if _, ok := bv[name]; !ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func paramValues(c *config.Config) (map[string]string, error) {
	var buf bytes.Buffer
	if err := c.Postconf(&buf, config.PostconfOptions{Expand: true}); err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " =")
		out[name] = strings.TrimPrefix(value, " ")
	}
	return out, sc.Err()
}

// sameServices compares master.cf entries, ignoring their line numbers.
func sameServices(a, b []config.Service) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Line, y.Line = 0, 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
