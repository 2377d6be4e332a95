package ops

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/yubin-mta/yubin/cluster"
)

//go:embed assets
var assetFiles embed.FS

// Options configure a Server.
type Options struct {
	Node    string // yubin_node_name
	Version string // build version and commit, for yubin_build_info
	Commit  string
	Source  Source    // the running node; required
	Log     *LogStats // the maillog tap's counters; required
	// MaxLeaderContact is how stale a follower's contact with the leader
	// may be for /readyz to answer 200; 0 means DefaultMaxLeaderContact.
	MaxLeaderContact time.Duration
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Server is the operations HTTP listener.
type Server struct {
	opts     Options
	now      func() time.Time
	registry *prometheus.Registry
	peers    *peerCache
	handler  http.Handler
	draining atomic.Bool

	http *http.Server
	ln   net.Listener
	done chan struct{}
}

// New builds the server and its private metrics registry.
func New(opts Options) (*Server, error) {
	if opts.Source == nil || opts.Log == nil {
		return nil, errors.New("ops: Source and Log are required")
	}
	if opts.MaxLeaderContact <= 0 {
		opts.MaxLeaderContact = DefaultMaxLeaderContact
	}
	s := &Server{opts: opts, now: opts.Now, registry: prometheus.NewRegistry()}
	if s.now == nil {
		s.now = time.Now
	}
	s.peers = &peerCache{src: opts.Source, now: s.now}
	cs := append(opts.Log.collectors(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		liveCollector{s: s})
	for _, c := range cs {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("ops: register metrics: %w", err)
		}
	}
	assets, err := fs.Sub(assetFiles, "assets")
	if err != nil {
		return nil, fmt.Errorf("ops: embedded assets: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.HandleFunc("GET /status.json", s.serveStatus)
	mux.Handle("GET /", http.FileServerFS(assets))
	s.handler = readOnly(mux)
	return s, nil
}

// Handler serves every endpoint; tests use it without a listener.
func (s *Server) Handler() http.Handler { return s.handler }

// readOnly sets the headers of a page that changes nothing and embeds
// nothing from elsewhere.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// Listen binds addr (yubin_metrics_address); Serve then answers on it.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("yubin_metrics_address %s: %w", addr, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln) // returns ErrServerClosed on Shutdown
	}()
	return nil
}

// Addr is the bound address, once Listen succeeded.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// SetDraining makes /readyz answer 503 from now on, so load balancers stop
// sending mail before the SMTP listeners close.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Shutdown stops the listener, waiting for requests in progress until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	<-s.done
	if err != nil {
		return fmt.Errorf("ops listener: %w", err)
	}
	return nil
}

// readiness is CheckReady unless the node is shutting down.
func (s *Server) readiness(self cluster.Status, now time.Time) Readiness {
	if s.draining.Load() {
		return Readiness{Reason: "shutting down"}
	}
	return CheckReady(self, now, s.opts.MaxLeaderContact)
}

// serveHealthz answers 200 while the process serves HTTP at all.
func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// serveReadyz answers 200 when the node can accept mail, else 503; the
// body says why.
func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	r := s.readiness(s.opts.Source.Cluster(), s.now())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !r.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:", r.Reason)
		return
	}
	fmt.Fprintln(w, "ready:", r.Reason)
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	st := s.Status(r.Context())
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(&st) // the client may have gone; nothing to do then
}

// Status gathers what the status page shows.
func (s *Server) Status(ctx context.Context) Status {
	now := s.now()
	src := s.opts.Source
	self := src.Cluster()
	msgs := src.Messages()
	st := Status{
		Node: s.opts.Node, Version: s.opts.Version, Commit: s.opts.Commit, Generated: now.UTC(),
		Readiness: s.readiness(self, now),
		Cluster: ClusterView{State: self.State, Leader: self.Leader, Term: self.Term,
			CommitIndex: self.CommitIndex, AppliedIndex: self.AppliedIndex},
		Members: memberViews(self, s.peers.get(ctx, self), now, s.opts.MaxLeaderContact),
		Queue:   summarizeQueue(msgs, now),
		Qshape:  qshapeText(msgs, now),
	}
	dests, running := src.Destinations()
	st.SchedLocal = running
	if running {
		st.Scheduler = s.opts.Node
	} else {
		st.Scheduler = self.Leader
	}
	for _, d := range dests {
		st.Dests = append(st.Dests, DestView{Transport: d.Transport, Nexthop: d.Nexthop, Active: d.Active,
			Limit: d.Limit, Queued: d.Queued, Dead: d.Dead, Reason: d.Reason})
	}
	sort.Slice(st.Dests, func(i, j int) bool {
		a, b := st.Dests[i], st.Dests[j]
		if a.Transport != b.Transport {
			return a.Transport < b.Transport
		}
		return a.Nexthop < b.Nexthop
	})
	st.Throughput, st.Deferrals = s.opts.Log.activity.snapshot()
	st.SMTPSession = int(gaugeValue(s.opts.Log.sessions))
	return st
}

// gaugeValue reads a gauge's current value.
func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil || m.Gauge == nil {
		return 0
	}
	return m.Gauge.GetValue()
}
