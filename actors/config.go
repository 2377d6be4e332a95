package actors

import (
	"errors"
	"time"
)

// Config holds the scheduler's main.cf settings. DefaultConfig returns
// Postfix's defaults; zero values are taken literally where Postfix gives
// zero a meaning (a lifetime of 0 allows one delivery attempt, a
// DelayWarningTime of 0 turns delay notices off).
type Config struct {
	NodeName            string        // this node, written into CmdActivate
	ActiveLimit         int           // qmgr_message_active_limit
	QueueRunDelay       time.Duration // queue_run_delay
	MinBackoff          time.Duration // minimal_backoff_time
	MaxBackoff          time.Duration // maximal_backoff_time
	MaxQueueLifetime    time.Duration // maximal_queue_lifetime
	BounceQueueLifetime time.Duration // bounce_queue_lifetime (null sender)
	DelayWarningTime    time.Duration // delay_warning_time, 0 = off
	SoftBounce          bool          // soft_bounce
	// Limits returns a transport's per-destination limits, by master.cf
	// service name. Nil means DefaultDestLimits for every transport.
	Limits func(transport string) DestLimits
	// Notifier makes bounce, delay and success notices; nil sends none.
	Notifier Notifier
	// AdoptActive makes Active messages of every node this scheduler's, for
	// a cluster with one scheduler (on the leader): a new leader delivers
	// what the old one had in flight (at-least-once).
	AdoptActive bool
	// ApplyTimeout bounds one Raft commit; 0 means 30s.
	ApplyTimeout time.Duration
}

// DestLimits are one transport's scheduling limits (the TRANSPORT_ prefixed
// parameters of postconf(5) plus its master.cf entry).
type DestLimits struct {
	// Concurrency is TRANSPORT_destination_concurrency_limit; 0 means no
	// limit other than ProcessLimit.
	Concurrency int
	// InitialConcurrency is initial_destination_concurrency (slow start).
	InitialConcurrency int
	// RecipientLimit is TRANSPORT_destination_recipient_limit, recipients
	// per delivery; 0 means no limit. Unlike Postfix, a limit of 1 does not
	// turn each recipient into its own destination: the concurrency limit
	// still counts sessions to the nexthop, which is what the docomo.ne.jp
	// setting (concurrency 1, recipient limit 1) is meant to achieve.
	RecipientLimit int
	// FailedCohortLimit is TRANSPORT_destination_concurrency_failed_cohort_limit.
	FailedCohortLimit int
	// ProcessLimit is the master.cf maxproc of the service: parallel
	// deliveries across all its destinations; 0 means no limit.
	ProcessLimit int
	// RateDelay is TRANSPORT_destination_rate_delay: when > 0, one delivery
	// at a time with this pause between the end of one and the next start.
	RateDelay time.Duration
	// LogName is the program name in the transport's log lines: the
	// master.cf command (smtp for "docomo-smtp unix - - n - 1 smtp") or its
	// -o syslog_name suffix. Empty means the transport name.
	LogName string
}

// Postfix's defaults.
const (
	DefaultActiveLimit         = 20000
	DefaultQueueRunDelay       = 300 * time.Second
	DefaultMinBackoff          = 300 * time.Second
	DefaultMaxBackoff          = 4000 * time.Second
	DefaultMaxQueueLifetime    = 5 * 24 * time.Hour
	DefaultBounceQueueLifetime = 5 * 24 * time.Hour
)

// DefaultConfig returns Postfix's defaults for the named node.
func DefaultConfig(node string) Config {
	return Config{
		NodeName:            node,
		ActiveLimit:         DefaultActiveLimit,
		QueueRunDelay:       DefaultQueueRunDelay,
		MinBackoff:          DefaultMinBackoff,
		MaxBackoff:          DefaultMaxBackoff,
		MaxQueueLifetime:    DefaultMaxQueueLifetime,
		BounceQueueLifetime: DefaultBounceQueueLifetime,
	}
}

// DefaultDestLimits returns Postfix's default_destination_* values and the
// default master.cf maxproc (default_process_limit 100).
func DefaultDestLimits() DestLimits {
	return DestLimits{
		Concurrency:        20,
		InitialConcurrency: 5,
		RecipientLimit:     50,
		FailedCohortLimit:  1,
		ProcessLimit:       100,
	}
}

// Validate reports settings the scheduler cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("scheduler: node name is empty")
	case c.ActiveLimit <= 0:
		return errors.New("scheduler: qmgr_message_active_limit must be positive")
	case c.QueueRunDelay <= 0:
		return errors.New("scheduler: queue_run_delay must be positive")
	case c.MinBackoff <= 0:
		return errors.New("scheduler: minimal_backoff_time must be positive")
	case c.MaxBackoff < c.MinBackoff:
		return errors.New("scheduler: maximal_backoff_time is less than minimal_backoff_time")
	case c.MaxQueueLifetime < 0 || c.BounceQueueLifetime < 0 || c.DelayWarningTime < 0:
		return errors.New("scheduler: negative queue lifetime or delay_warning_time")
	}
	return nil
}

// limits returns the normalised limits for a transport.
func (c *Config) limits(transport string) DestLimits {
	l := DefaultDestLimits()
	if c.Limits != nil {
		l = c.Limits(transport)
	}
	return l.normalized(transport)
}

// normalized replaces values that cannot work with safe ones.
func (l DestLimits) normalized(transport string) DestLimits {
	if l.Concurrency < 0 {
		l.Concurrency = 0
	}
	if l.InitialConcurrency <= 0 {
		l.InitialConcurrency = 1
	}
	if l.RecipientLimit < 0 {
		l.RecipientLimit = 0
	}
	if l.FailedCohortLimit <= 0 {
		l.FailedCohortLimit = 1
	}
	if l.ProcessLimit < 0 {
		l.ProcessLimit = 0
	}
	if l.RateDelay < 0 {
		l.RateDelay = 0
	}
	if l.LogName == "" {
		l.LogName = transport
	}
	return l
}
