// Package daemon assembles a running yubin node from its configuration: the
// Raft-replicated queue, the control socket for the queue tools, the
// maildrop pickup, the SMTP listeners and the delivery scheduler. It owns
// start-up order and shutdown; the parts themselves live in their packages.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/control"
	"github.com/yubin-mta/yubin/internal/dnsres"
	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/internal/pickup"
	"github.com/yubin-mta/yubin/queue"
)

// settings are the values the node's own code reads often, parsed once.
type settings struct {
	messageSizeLimit int64
	pickupDefaults   pickup.Defaults
	maildropDir      string
	myOrigin         string
}

// Node is one running yubin node.
type Node struct {
	cfg          *config.Config
	name         string
	settings     settings
	log          *maillog.Logger
	fsm          *queue.FSM
	raft         *cluster.Node
	ids          *queue.IDGenerator
	ctl          *control.Server
	sched        *actors.Scheduler // while this node leads; guarded by mu
	transportSet map[string]actors.Transport
	spread       *spreader // delivery on other nodes (remote.go); nil without a cluster listener
	stopLead     context.CancelFunc
	leadDone     chan struct{}
	smtpd        []smtpServer
	dns          *dnsres.Resolver
	ops          opsState
	adminGID     int // yubin_admin_group, -1 when unset
	stopPickup   chan struct{}
	pickupDone   chan struct{}

	mu   sync.Mutex
	maps *mapSet // lookup tables, replaced on reload
}

// smtpServer is one SMTP listener.
type smtpServer interface {
	Shutdown(ctx context.Context) error
}

// MaildropDir is where sendmail leaves mail while no node runs.
func MaildropDir(cfg *config.Config) string {
	return filepath.Join(cfg.Get("queue_directory"), "maildrop")
}

// Run starts a node from cfg and serves until SIGTERM or SIGINT.
func Run(cfg *config.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := hangups() // before Start: an early SIGHUP waits instead of killing the process
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.reloadOnHangup(hup)()
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.Shutdown(shutdownCtx)
}

// Start brings a node up: queue and Raft first (so nothing is accepted
// before the queue is there), then the control socket, the scheduler, the
// maildrop and finally the SMTP listeners.
func Start(ctx context.Context, cfg *config.Config) (*Node, error) {
	n := &Node{cfg: cfg, name: cfg.Get("yubin_node_name")}
	var err error
	if n.settings, err = loadSettings(cfg); err != nil {
		return nil, err
	}
	if n.adminGID, err = adminGroup(cfg); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Get("queue_directory"), cfg.Get("data_directory")} {
		// Searchable by all: the maildrop and the control socket inside carry
		// their own permissions; the queue and Raft data below are 0700.
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if n.log, err = maillog.Open(cfg.Get("maillog_file"), cfg.Get("syslog_name"), cfg.Get("myhostname")); err != nil {
		return nil, err
	}
	n.tapLog()
	if n.maps, err = openMaps(cfg); err != nil {
		n.log.Close()
		return nil, err
	}
	if n.dns, err = newResolver(cfg); err != nil {
		n.log.Close()
		return nil, err
	}
	n.ids = queue.NewIDGenerator(n.name)
	if n.fsm, err = queue.NewFSM(filepath.Join(cfg.Get("queue_directory"), "queue")); err != nil {
		n.log.Close()
		return nil, err
	}
	if err := n.startScheduler(); err != nil {
		n.log.Close()
		return nil, err
	}
	ccfg, err := clusterConfig(cfg)
	if err != nil {
		n.log.Close()
		return nil, err
	}
	ccfg.Deliveries = n.deliveryHandler()
	if n.raft, err = cluster.Start(ccfg, n.fsm); err != nil {
		n.log.Close()
		return nil, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = n.raft.WaitLeader(waitCtx)
	cancel()
	if err != nil {
		n.Shutdown(context.Background())
		return nil, err
	}

	// Apply everything the log holds before answering anyone, so that a
	// restarted node shows every message it acknowledged before.
	if n.raft.IsLeader() {
		if err := n.raft.Raft().Barrier(time.Minute).Error(); err != nil {
			n.Shutdown(context.Background())
			return nil, fmt.Errorf("replay queue log: %w", err)
		}
	}
	leadCtx, stopLead := context.WithCancel(context.Background())
	n.stopLead, n.leadDone = stopLead, make(chan struct{})
	go n.leadership(leadCtx)

	n.ctl = control.NewServer()
	n.registerControl(n.ctl)
	sock := cfg.Get("yubin_control_socket")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		n.Shutdown(context.Background())
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	// The control socket is for root, the node's user and
	// yubin_admin_group; other users submit through the maildrop.
	if err := n.ctl.Listen(sock, 0o660); err != nil {
		n.Shutdown(context.Background())
		return nil, err
	}
	if n.adminGID >= 0 {
		if err := os.Chown(sock, -1, n.adminGID); err != nil {
			n.Shutdown(context.Background())
			return nil, fmt.Errorf("control socket: %w", err)
		}
	}
	go n.ctl.Serve(ctx)

	if err := n.startPickup(); err != nil {
		n.Shutdown(context.Background())
		return nil, err
	}
	if err := n.startSMTP(ctx); err != nil {
		n.Shutdown(context.Background())
		return nil, err
	}
	if err := n.startOps(); err != nil {
		n.Shutdown(context.Background())
		return nil, err
	}
	n.log.Printf("master", "daemon started -- version %s, configuration %s", Version, cfg.Directory())
	return n, nil
}

// Version is the build's version, set by the command.
var Version = "dev"

func loadSettings(cfg *config.Config) (settings, error) {
	var s settings
	var err error
	if s.messageSizeLimit, err = cfg.Size("message_size_limit"); err != nil {
		return s, err
	}
	s.myOrigin = cfg.Get("myorigin")
	s.pickupDefaults = pickup.Defaults{MyHostname: cfg.Get("myhostname"), MyOrigin: s.myOrigin, MailName: cfg.Get("mail_name")}
	s.maildropDir = MaildropDir(cfg)
	return s, nil
}

func clusterConfig(cfg *config.Config) (cluster.Config, error) {
	c := cluster.Config{
		NodeName: cfg.Get("yubin_node_name"),
		Dir:      cfg.Get("yubin_raft_directory"),
		BindAddr: cfg.Get("yubin_cluster_address"),
		Secret:   cfg.Get("yubin_cluster_secret"),
		Logger:   hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr}),
	}
	for _, p := range cfg.List("yubin_cluster_peers") {
		name, addr, ok := strings.Cut(p, "=")
		if !ok || name == "" || addr == "" {
			return c, fmt.Errorf("yubin_cluster_peers: %q is not name=host:port", p)
		}
		c.Peers = append(c.Peers, cluster.Peer{Name: name, Addr: addr})
	}
	return c, nil
}

// Shutdown stops accepting mail, stops deliveries and closes the queue.
func (n *Node) Shutdown(ctx context.Context) error {
	var errs []error
	n.drainOps()
	for _, s := range n.smtpd {
		errs = append(errs, s.Shutdown(ctx))
	}
	errs = append(errs, n.stopOps(ctx))
	if n.ctl != nil {
		errs = append(errs, n.ctl.Close())
	}
	if n.stopPickup != nil {
		close(n.stopPickup)
		<-n.pickupDone
	}
	if n.stopLead != nil {
		n.stopLead()
		<-n.leadDone
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown())
	}
	n.log.Printf("master", "terminating on signal")
	errs = append(errs, n.log.Close())
	return errors.Join(errs...)
}

func removeFile(p string) { _ = os.Remove(p) }
