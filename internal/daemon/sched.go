package daemon

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/actors/transport/local"
	"github.com/yubin-mta/yubin/actors/transport/pipe"
	"github.com/yubin-mta/yubin/actors/transport/virtual"
	"github.com/yubin-mta/yubin/cluster"
	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/internal/mailbox"
	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/queue"
	"github.com/yubin-mta/yubin/smtp/outbound"
)

// Apply commits a queue command (actors.Applier).
func (n *Node) Apply(ctx context.Context, c *queue.Command) (queue.ApplyResult, error) {
	return n.apply(ctx, c)
}

func durationParam(cfg *config.Config, name string) time.Duration {
	d, _ := cfg.Duration(name) // validated at load
	return d
}

func intParam(cfg *config.Config, name string) int {
	v, _ := cfg.Int(name) // validated at load
	return v
}

// schedulerConfig maps main.cf and master.cf onto the scheduler's settings.
func (n *Node) schedulerConfig() actors.Config {
	cfg := n.cfg
	c := actors.DefaultConfig(n.name)
	c.ActiveLimit = intParam(cfg, "qmgr_message_active_limit")
	c.QueueRunDelay = durationParam(cfg, "queue_run_delay")
	c.MinBackoff = durationParam(cfg, "minimal_backoff_time")
	c.MaxBackoff = durationParam(cfg, "maximal_backoff_time")
	c.MaxQueueLifetime = durationParam(cfg, "maximal_queue_lifetime")
	c.BounceQueueLifetime = durationParam(cfg, "bounce_queue_lifetime")
	c.DelayWarningTime = durationParam(cfg, "delay_warning_time")
	c.SoftBounce = boolParam(cfg, "soft_bounce")
	c.Notifier = &notifier{n: n}
	c.Limits = func(transport string) actors.DestLimits {
		l := actors.DefaultDestLimits()
		ti := func(suffix string, dst *int) {
			if v, err := cfg.TransportInt(transport, suffix); err == nil {
				*dst = v
			}
		}
		ti("destination_concurrency_limit", &l.Concurrency)
		ti("initial_destination_concurrency", &l.InitialConcurrency)
		ti("destination_recipient_limit", &l.RecipientLimit)
		ti("destination_concurrency_failed_cohort_limit", &l.FailedCohortLimit)
		if d, err := cfg.TransportDuration(transport, "destination_rate_delay"); err == nil {
			l.RateDelay = d
		}
		if svc, ok := cfg.Service(transport); ok {
			l.ProcessLimit = svc.MaxProc
			l.LogName = svc.Command
		}
		return l
	}
	return c
}

// startScheduler prepares the delivery engine and hooks it to the queue's
// committed changes. The engine itself runs only on the Raft leader (see
// leadership): one scheduler per cluster is what makes every destination's
// concurrency limit a cluster-wide limit.
func (n *Node) startScheduler() error {
	transports, err := n.transports()
	if err != nil {
		return err
	}
	n.transportSet = transports
	n.fsm.OnEvent(n.notify)
	return nil
}

// notify passes a committed change to the running scheduler, if any.
func (n *Node) notify(e queue.Event) {
	if s := n.scheduler(); s != nil {
		s.Notify(e)
	}
}

func (n *Node) scheduler() *actors.Scheduler {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sched
}

// newScheduler creates a scheduler for one term of leadership. It adopts
// the deliveries other nodes had in flight: only the leader delivers.
func (n *Node) newScheduler() *actors.Scheduler {
	cfg := n.schedulerConfig()
	cfg.AdoptActive = true
	return actors.New(cfg, n.fsm, n, router{n}, n.transportSet, n.schedulerLog(), nil)
}

// router resolves recipients with the current rewriter (actors.Router).
type router struct{ n *Node }

func (r router) Route(rcpt queue.Recipient, _ string) (actors.Route, error) {
	if text, ok := strings.CutPrefix(rcpt.Target, "error:"); ok {
		return actors.Route{Transport: "error", Nexthop: text, Recipient: rcpt.Addr}, nil
	}
	rw := r.n.rewriter()
	rt, err := rw.Route(rcpt.Addr)
	if err != nil {
		return actors.Route{}, err
	}
	if rcpt.Target != "" {
		// An alias expanded to |command or /file: the local agent runs it.
		tr, _, _ := strings.Cut(r.n.cfg.Get("local_transport"), ":")
		return actors.Route{Transport: tr, Nexthop: r.n.cfg.Get("myhostname"), Recipient: rcpt.Addr}, nil
	}
	return actors.Route{Transport: rt.Transport, Nexthop: rt.Nexthop, Recipient: rt.Recipient}, nil
}

// transports builds one delivery agent per master.cf service, by its command.
func (n *Node) transports() (map[string]actors.Transport, error) {
	out := map[string]actors.Transport{}
	for _, svc := range n.cfg.Services() {
		if svc.Type == "inet" {
			continue
		}
		var t actors.Transport
		var err error
		switch svc.Command {
		case "smtp", "lmtp":
			t, err = n.smtpTransport(svc)
		case "local":
			t, err = n.localTransport(svc)
		case "virtual":
			t, err = n.virtualTransport(svc)
		case "pipe":
			t, err = n.pipeTransport(svc)
		case "error":
			t = actors.ErrorTransport{}
		case "retry":
			t = actors.ErrorTransport{Retry: true}
		case "discard":
			t = actors.DiscardTransport{}
		default:
			continue // Postfix daemons that are not delivery agents
		}
		if err != nil {
			return nil, fmt.Errorf("master.cf service %s: %w", svc.Name, err)
		}
		out[svc.Name] = t
	}
	return n.spreadTransports(out)
}

// spreadsJobs reports whether the leader hands jobs to other nodes. Then
// no SMTP session is cached across jobs: an idle session parked on one node
// is invisible to the leader, and the next job of its destination may run
// on another node, so the destination would see more sessions than its
// concurrency limit allows. Each job ends with QUIT before its result
// reaches the leader.
func (n *Node) spreadsJobs() bool {
	return n.cfg.Get("yubin_cluster_address") != "" && n.cfg.Get("yubin_delivery_nodes") == "all"
}

// spreadTransports lets the leader hand jobs of the delivery agents to
// other nodes (remote.go); error, retry and discard always run locally.
// A node without a cluster listener keeps its agents as they are.
func (n *Node) spreadTransports(local map[string]actors.Transport) (map[string]actors.Transport, error) {
	if n.cfg.Get("yubin_cluster_address") == "" {
		return local, nil
	}
	policy, err := loadDeliveryPolicy(n.cfg)
	if err != nil {
		return nil, err
	}
	n.spread = newSpreader(n, local, policy)
	out := make(map[string]actors.Transport, len(local))
	for name, t := range local {
		switch t.(type) {
		case actors.ErrorTransport, actors.DiscardTransport:
			out[name] = t
		default:
			out[name] = &spreadTransport{sp: n.spread, local: t}
		}
	}
	return out, nil
}

// schedulerLog is the scheduler's logger: with delivery spread, the one
// that routes a remote job's delivery lines to the node that ran it.
func (n *Node) schedulerLog() *maillog.Logger {
	if n.spread != nil {
		return n.spread.log
	}
	return n.log
}

// deliveryHandler serves the jobs the leader hands to this node; nil (no
// cluster listener) refuses them.
func (n *Node) deliveryHandler() cluster.DeliveryHandler {
	if n.spread == nil {
		return nil
	}
	return deliveryServer{n: n, local: n.spread.local}
}

func portParam(v string, def int) int {
	if p, err := strconv.Atoi(v); err == nil {
		return p
	}
	if p, err := net.LookupPort("tcp", v); err == nil {
		return p
	}
	return def
}

// smtpAgent delivers over SMTP or LMTP with one client per service, so each
// service keeps its own -o settings and connection cache.
type smtpAgent struct {
	proto  string
	client *outbound.Client
}

func (n *Node) smtpTransport(svc config.Service) (actors.Transport, error) {
	p := func(name string) string { return n.cfg.ServiceParam(svc.Name, name) }
	pre := svc.Command // "smtp" or "lmtp": parameter prefix
	d := func(name string) time.Duration {
		v, _ := config.ParseDuration(p(pre+"_"+name), 's')
		return v
	}
	opts := outbound.Options{
		HeloName:        p(pre + "_helo_name"),
		Resolver:        n.dns,
		DefaultPort:     portParam(p("smtp_tcp_port"), 25),
		LMTPDefaultPort: portParam(p("lmtp_tcp_port"), 24),
		ConnectTimeout:  d("connect_timeout"),
		HeloTimeout:     d("helo_timeout"),
		MailTimeout:     d("mail_timeout"),
		RcptTimeout:     d("rcpt_timeout"),
		DataInitTimeout: d("data_init_timeout"),
		DataXferTimeout: d("data_xfer_timeout"),
		DataDoneTimeout: d("data_done_timeout"),
		QuitTimeout:     d("quit_timeout"),
		// Spread jobs close their session: see spreadsJobs.
		DisableConnectionCache: n.spreadsJobs(),
		TLSLevel:               p(pre + "_tls_security_level"),
		BindAddress:            p("smtp_bind_address"),
		Log:                    func(format string, args ...any) { n.log.Printf(svc.Command, format, args...) },
	}
	if opts.HeloName == "" {
		opts.HeloName = p("myhostname")
	}
	if pre == "smtp" {
		opts.FallbackRelays = config.SplitList(p("smtp_fallback_relay"))
	}
	c, err := outbound.New(opts)
	if err != nil {
		return nil, err
	}
	return &smtpAgent{proto: pre, client: c}, nil
}

func (a *smtpAgent) Deliver(ctx context.Context, job *actors.Job) []actors.Result {
	req := &outbound.Request{
		Transport:    a.proto,
		Nexthop:      job.Nexthop,
		Sender:       job.Sender,
		Body:         job.Body,
		Size:         job.Message.Size,
		EightBitMIME: job.Message.BodyType == "8BITMIME",
		SMTPUTF8:     job.Message.SMTPUTF8,
		RET:          job.Message.RET,
		ENVID:        job.Message.ENVID,
		QueueID:      job.QueueID,
	}
	for _, r := range job.Recipients {
		req.Recipients = append(req.Recipients, outbound.Recipient{Addr: r.Addr, Notify: r.Notify, ORCPT: r.ORCPT})
	}
	out := a.client.Deliver(ctx, req)
	// Results come back in request order, one per recipient.
	res := make([]actors.Result, len(job.Recipients))
	for i, r := range job.Recipients {
		res[i] = actors.Result{Index: r.Index, Status: queue.RcptDeferred, DSN: "4.3.0", Reply: "delivery agent returned no result", Relay: out.Relay}
		if i < len(out.Results) {
			o := out.Results[i]
			relay := o.Relay
			if relay == "" {
				relay = out.Relay
			}
			res[i] = actors.Result{Index: r.Index, Status: outboundStatus(o.Status), DSN: o.DSN, Reply: o.Reply, Relay: relay}
		}
		res[i].ConnSetup, res[i].Transmission, res[i].ConnUse = out.ConnSetup, out.Transmission, out.ConnUse
	}
	return res
}

func outboundStatus(s outbound.Status) queue.RcptStatus {
	switch s {
	case outbound.Sent:
		return queue.RcptSent
	case outbound.Bounced:
		return queue.RcptBounced
	}
	return queue.RcptDeferred
}

func mailboxStatus(s mailbox.Status) queue.RcptStatus {
	switch s {
	case mailbox.Sent:
		return queue.RcptSent
	case mailbox.Bounced:
		return queue.RcptBounced
	}
	return queue.RcptDeferred
}

// perRecipient adapts a one-recipient-at-a-time agent (local, virtual, pipe).
type perRecipient struct {
	deliver func(ctx context.Context, d *mailbox.Delivery) mailbox.Result
}

func (a perRecipient) Deliver(ctx context.Context, job *actors.Job) []actors.Result {
	res := make([]actors.Result, 0, len(job.Recipients))
	for _, r := range job.Recipients {
		start := time.Now()
		d := &mailbox.Delivery{
			QueueID: job.QueueID, Sender: job.Sender, Recipient: r.Addr, OrigRecipient: r.OrigAddr,
			Target: r.Target, Nexthop: job.Nexthop, Body: job.Body, ArrivalTime: job.Message.Arrival,
		}
		out := a.deliver(ctx, d)
		res = append(res, actors.Result{Index: r.Index, Status: mailboxStatus(out.Status), DSN: out.DSN,
			Reply: out.Reply, Relay: out.Relay, Transmission: time.Since(start)})
	}
	return res
}

func (n *Node) localTransport(svc config.Service) (actors.Transport, error) {
	p := func(name string) string { return n.cfg.ServiceParam(svc.Name, name) }
	timeout, _ := config.ParseDuration(p("command_time_limit"), 's')
	a, err := local.New(local.Options{
		MailSpoolDirectory:  p("mail_spool_directory"),
		HomeMailbox:         p("home_mailbox"),
		MailboxCommand:      p("mailbox_command"),
		Hostname:            p("myhostname"),
		CommandTimeout:      timeout,
		AllowMailToCommands: p("allow_mail_to_commands"),
		AllowMailToFiles:    p("allow_mail_to_files"),
		RecipientDelimiter:  p("recipient_delimiter"),
		DefaultPrivs:        p("default_privs"),
	})
	if err != nil {
		return nil, err
	}
	return perRecipient{deliver: a.Deliver}, nil
}

// firstTable opens the first table of a table-list parameter (nil if empty).
func firstTable(spec string) (lookup.Table, error) {
	specs := config.SplitList(spec)
	if len(specs) == 0 {
		return nil, nil
	}
	return lookup.Open(specs[0])
}

func (n *Node) virtualTransport(svc config.Service) (actors.Transport, error) {
	p := func(name string) string { return n.cfg.ServiceParam(svc.Name, name) }
	opts := virtual.Options{MailboxBase: p("virtual_mailbox_base"), Hostname: p("myhostname"), RecipientDelimiter: p("recipient_delimiter")}
	var err error
	if opts.MailboxMaps, err = firstTable(p("virtual_mailbox_maps")); err != nil {
		return nil, err
	}
	if opts.UIDMaps, err = firstTable(p("virtual_uid_maps")); err != nil {
		return nil, err
	}
	if opts.GIDMaps, err = firstTable(p("virtual_gid_maps")); err != nil {
		return nil, err
	}
	if v, err := config.ParseInt(p("virtual_minimum_uid")); err == nil {
		opts.MinimumUID = int(v)
	}
	if opts.MailboxBase == "" || opts.MailboxMaps == nil {
		// Not configured: a virtual delivery fails clearly instead of at start.
		return actors.ErrorTransport{Retry: true}, nil
	}
	a, err := virtual.New(opts)
	if err != nil {
		return nil, err
	}
	return perRecipient{deliver: a.Deliver}, nil
}

func (n *Node) pipeTransport(svc config.Service) (actors.Transport, error) {
	opts, err := pipe.ParseArgs(svc.Name, svc.Args)
	if err != nil {
		return nil, err
	}
	a, err := pipe.New(opts, nil, nil)
	if err != nil {
		return nil, err
	}
	return perRecipient{deliver: a.Deliver}, nil
}
