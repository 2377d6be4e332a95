package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/yubin-mta/yubin/internal/lookup"
)

// Codes are the reply codes of main.cf; zero fields take Postfix's defaults.
type Codes struct {
	Reject                int // reject_code, 554
	Defer                 int // defer_code, 450
	AccessReject          int // access_map_reject_code, 554
	AccessDefer           int // access_map_defer_code, 450
	RelayReject           int // relay_domains_reject_code, 554
	UnknownAddress        int // unknown_address_reject_code, 450
	UnknownClient         int // unknown_client_reject_code, 450
	NonFQDN               int // non_fqdn_reject_code, 504
	InvalidHostname       int // invalid_hostname_reject_code, 501
	UnknownLocalRecipient int // unknown_local_recipient_reject_code, 550
	UnknownVirtualAlias   int // unknown_virtual_alias_reject_code, 550
	UnknownVirtualMailbox int // unknown_virtual_mailbox_reject_code, 550
	UnknownRelayRecipient int // unknown_relay_recipient_reject_code, 550
	MultiRecipientBounce  int // multi_recipient_bounce_reject_code, 550
}

func (c Codes) withDefaults() Codes {
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.Reject, 554)
	set(&c.Defer, 450)
	set(&c.AccessReject, 554)
	set(&c.AccessDefer, 450)
	set(&c.RelayReject, 554)
	set(&c.UnknownAddress, 450)
	set(&c.UnknownClient, 450)
	set(&c.NonFQDN, 504)
	set(&c.InvalidHostname, 501)
	set(&c.UnknownLocalRecipient, 550)
	set(&c.UnknownVirtualAlias, 550)
	set(&c.UnknownVirtualMailbox, 550)
	set(&c.UnknownRelayRecipient, 550)
	set(&c.MultiRecipientBounce, 550)
	return c
}

// Config holds the restriction lists (main.cf values, split or not) and
// the inputs they need.
type Config struct {
	ClientRestrictions    []string // smtpd_client_restrictions
	HeloRestrictions      []string // smtpd_helo_restrictions
	SenderRestrictions    []string // smtpd_sender_restrictions
	RelayRestrictions     []string // smtpd_relay_restrictions
	RecipientRestrictions []string // smtpd_recipient_restrictions
	DataRestrictions      []string // smtpd_data_restrictions
	// RestrictionClasses maps each smtpd_restriction_classes name to its list.
	RestrictionClasses map[string][]string

	// RejectUnlistedRecipient is smtpd_reject_unlisted_recipient.
	RejectUnlistedRecipient bool
	// NullAccessLookupKey is smtpd_null_access_lookup_key ("<>").
	NullAccessLookupKey string

	// SenderLoginMaps is smtpd_sender_login_maps: sender address to the
	// SASL logins that own it, for the *_sender_login_mismatch restrictions.
	SenderLoginMaps []lookup.Table
	// RecipientDelimiter is recipient_delimiter, for sender login lookups
	// of user+ext addresses.
	RecipientDelimiter string

	MyNetworks *Networks
	Env        Env
	// OpenTable opens the TYPE:NAME argument of check_*_access.
	OpenTable func(spec string) (lookup.Table, error)
	// Resolver is needed by reject_unknown_* restrictions.
	Resolver Resolver
	Codes    Codes
}

// DefaultConfig returns Postfix 3.7's defaults: no restrictions except
// smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
// defer_unauth_destination, and smtpd_reject_unlisted_recipient = yes.
// With these defaults the server is never an open relay.
func DefaultConfig() Config {
	return Config{
		RelayRestrictions:       []string{"permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"},
		RejectUnlistedRecipient: true,
		NullAccessLookupKey:     "<>",
	}
}

// list identifies a restriction list for error messages and reply classes.
type list int

const (
	listClient list = iota
	listHelo
	listSender
	listRelay
	listRecipient
	listData
	numLists
)

var listParam = [numLists]string{
	"smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
	"smtpd_relay_restrictions", "smtpd_recipient_restrictions", "smtpd_data_restrictions",
}

var listClass = [numLists]replyClass{
	classClient, classHelo, classSender, classRecipient, classRecipient, classData,
}

// step is one compiled restriction.
type step struct {
	name  string       // restriction or class name, lower case
	table lookup.Table // for check_*_access
}

// Checker evaluates the restrictions. It is safe for concurrent use.
type Checker struct {
	cfg     Config
	codes   Codes
	lists   [numLists][]step
	classes map[string][]step
}

// restrictions without arguments.
var simpleRestrictions = map[string]bool{
	"permit": true, "reject": true, "defer": true, "warn_if_reject": true,
	"defer_if_permit": true, "defer_if_reject": true,
	"reject_unauth_pipelining": true,
	"permit_mynetworks":        true, "permit_sasl_authenticated": true,
	"reject_unauth_destination": true, "defer_unauth_destination": true, "permit_auth_destination": true,
	"reject_unknown_sender_domain": true, "reject_unknown_recipient_domain": true,
	"reject_unknown_client_hostname": true, "reject_unknown_client": true,
	"reject_non_fqdn_sender": true, "reject_non_fqdn_recipient": true,
	"reject_non_fqdn_helo_hostname": true, "reject_non_fqdn_hostname": true,
	"reject_invalid_helo_hostname": true, "reject_invalid_hostname": true,
	"reject_unlisted_recipient": true, "check_recipient_maps": true,
	"reject_multi_recipient_bounce": true,
	"reject_sender_login_mismatch":  true, "reject_authenticated_sender_login_mismatch": true,
	"reject_known_sender_login_mismatch": true, "reject_unauthenticated_sender_login_mismatch": true,
}

// restrictions followed by a TYPE:NAME table.
var tableRestrictions = map[string]bool{
	"check_client_access": true, "check_helo_access": true,
	"check_sender_access": true, "check_recipient_access": true,
}

var dnsRestrictions = map[string]bool{
	"reject_unknown_sender_domain": true, "reject_unknown_recipient_domain": true,
}

// New compiles the configuration: every restriction name must be known,
// every table must open, every class must be defined.
func New(cfg Config) (*Checker, error) {
	c := &Checker{cfg: cfg, codes: cfg.Codes.withDefaults(), classes: map[string][]step{}}
	if c.cfg.NullAccessLookupKey == "" {
		c.cfg.NullAccessLookupKey = "<>"
	}
	tables := map[string]lookup.Table{}
	for name := range cfg.RestrictionClasses {
		if name == "" || simpleRestrictions[name] || tableRestrictions[name] {
			return nil, fmt.Errorf("smtpd_restriction_classes: %q is not a valid class name", name)
		}
		c.classes[strings.ToLower(name)] = nil
	}
	for name, value := range cfg.RestrictionClasses {
		steps, err := c.compile(SplitList(value...), tables)
		if err != nil {
			return nil, fmt.Errorf("restriction class %s: %w", name, err)
		}
		c.classes[strings.ToLower(name)] = steps
	}
	values := [numLists][]string{
		cfg.ClientRestrictions, cfg.HeloRestrictions, cfg.SenderRestrictions,
		cfg.RelayRestrictions, cfg.RecipientRestrictions, cfg.DataRestrictions,
	}
	for i, v := range values {
		steps, err := c.compile(SplitList(v...), tables)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", listParam[i], err)
		}
		c.lists[i] = steps
	}
	return c, nil
}

func (c *Checker) compile(words []string, tables map[string]lookup.Table) ([]step, error) {
	var steps []step
	for i := 0; i < len(words); i++ {
		name := strings.ToLower(words[i])
		switch {
		case tableRestrictions[name]:
			if i+1 >= len(words) {
				return nil, fmt.Errorf("%s needs a TYPE:NAME table argument", name)
			}
			i++
			spec := words[i]
			t, err := c.openTable(spec, tables)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", name, spec, err)
			}
			steps = append(steps, step{name: name, table: t})
		case simpleRestrictions[name]:
			if dnsRestrictions[name] && c.cfg.Resolver == nil {
				return nil, fmt.Errorf("%s needs a DNS resolver", name)
			}
			if senderLoginRestrictions[name] && len(c.cfg.SenderLoginMaps) == 0 {
				return nil, fmt.Errorf("%s needs smtpd_sender_login_maps", name)
			}
			steps = append(steps, step{name: name})
		default:
			if _, ok := c.classes[name]; !ok {
				return nil, fmt.Errorf("unknown restriction %q", words[i])
			}
			steps = append(steps, step{name: name})
		}
	}
	return steps, nil
}

func (c *Checker) openTable(spec string, cache map[string]lookup.Table) (lookup.Table, error) {
	if t, ok := cache[spec]; ok {
		return t, nil
	}
	if !isTableSpec(spec) {
		return nil, fmt.Errorf("not a TYPE:NAME table")
	}
	if c.cfg.OpenTable == nil {
		return nil, fmt.Errorf("no table opener configured")
	}
	t, err := c.cfg.OpenTable(spec)
	if err != nil {
		return nil, err
	}
	cache[spec] = t
	return t, nil
}

// CheckRecipient evaluates, at RCPT TO time, the client, HELO, sender,
// relay and recipient restrictions (smtpd_delay_reject = yes) and then the
// implicit reject_unlisted_recipient.
func (c *Checker) CheckRecipient(ctx context.Context, t *Transaction) Result {
	e := &eval{c: c, ctx: ctx, t: t}
	for _, l := range []list{listClient, listHelo, listSender, listRelay, listRecipient} {
		if e.runList(c.lists[l], listClass[l]) == stop {
			return e.res
		}
	}
	if c.cfg.RejectUnlistedRecipient && !e.unlistedChecked {
		e.unlistedChecked = true
		if r := c.unlistedRecipient(t.Recipient); r != nil {
			e.decide(r, false)
			return e.res
		}
	}
	e.finish()
	return e.res
}

// CheckData evaluates smtpd_data_restrictions.
func (c *Checker) CheckData(ctx context.Context, t *Transaction) Result {
	e := &eval{c: c, ctx: ctx, t: t}
	if e.runList(c.lists[listData], classData) != stop {
		e.finish()
	}
	return e.res
}

// VerifyRecipient applies the unlisted-recipient check alone (for VRFY).
func (c *Checker) VerifyRecipient(rcpt string) *Reply { return c.unlistedRecipient(rcpt) }

// outcome of one restriction or list.
type outcome int

const (
	dunno  outcome = iota // no decision, go on
	permit                // this list passed
	stop                  // e.res.Reply is final
)

// maxDepth bounds restriction classes and access values that name classes.
const maxDepth = 20

type eval struct {
	c   *Checker
	ctx context.Context
	t   *Transaction
	res Result

	warnNext        bool
	deferIfPermit   *Reply
	deferIfReject   *Reply
	unlistedChecked bool
	depth           int
}

// finish applies a pending DEFER_IF_PERMIT to an accepted request.
func (e *eval) finish() {
	if e.res.Reply == nil && e.deferIfPermit != nil {
		e.res.Reply = e.deferIfPermit
	}
}

func (e *eval) runList(steps []step, class replyClass) outcome {
	e.warnNext = false
	for _, s := range steps {
		warn := e.warnNext
		e.warnNext = false
		if o := e.step(s, class, warn); o != dunno {
			return o
		}
	}
	return dunno
}

// decide turns a reject or defer reply into the outcome, honouring
// warn_if_reject and DEFER_IF_REJECT.
func (e *eval) decide(r *Reply, warn bool) outcome {
	if warn {
		e.res.Events = append(e.res.Events, Event{Action: "reject_warning", Text: r.String()})
		return dunno
	}
	if !r.Temporary() && e.deferIfReject != nil {
		r = e.deferIfReject
	}
	e.res.Reply = r
	return stop
}

func (e *eval) reply(code int, dsn string, class replyClass, text string) *Reply {
	return &Reply{Code: code, DSN: dsn, Text: fmt.Sprintf("<%s>: %s rejected: %s", e.t.subjectName(class), class, text)}
}

// configError answers like Postfix when the configuration cannot be
// followed at run time.
func (e *eval) configError(format string, args ...any) outcome {
	e.res.Events = append(e.res.Events, Event{Action: "warning", Text: fmt.Sprintf(format, args...)})
	e.res.Reply = &Reply{Code: 451, DSN: "4.3.5", Text: "Server configuration error"}
	return stop
}

func (e *eval) step(s step, class replyClass, warn bool) outcome {
	t, codes := e.t, e.c.codes
	switch s.name {
	case "permit":
		return permit
	case "reject":
		return e.decide(e.reply(codes.Reject, "5.7.1", class, "Access denied"), warn)
	case "defer":
		return e.decide(e.reply(codes.Defer, "4.7.1", class, "Try again later"), warn)
	case "warn_if_reject":
		e.warnNext = true
		return dunno
	case "defer_if_permit":
		e.setDeferIfPermit(e.reply(codes.Defer, "4.7.1", class, "Service unavailable"))
		return dunno
	case "defer_if_reject":
		e.deferIfReject = e.reply(codes.Defer, "4.7.1", class, "Service unavailable")
		return dunno
	case "reject_unauth_pipelining":
		return dunno // the server enforces synchronization itself
	case "permit_mynetworks":
		if e.c.cfg.MyNetworks.Contains(t.Client.Addr) {
			return permit
		}
		return dunno
	case "permit_sasl_authenticated":
		if t.Client.SASLUser != "" {
			return permit
		}
		return dunno
	case "reject_unauth_destination", "defer_unauth_destination", "permit_auth_destination":
		return e.destination(s.name, warn)
	case "check_client_access":
		return e.access(s.table, classClient, e.clientKeys(s.table), warn)
	case "check_helo_access":
		if t.Client.Helo == "" {
			return dunno
		}
		return e.access(s.table, classHelo, domainKeys(strings.ToLower(t.Client.Helo), partialKeys(s.table)), warn)
	case "check_sender_access":
		if t.Sender == "" {
			return e.access(s.table, classSender, []string{e.c.cfg.NullAccessLookupKey}, warn)
		}
		return e.access(s.table, classSender, mailKeys(t.Sender, partialKeys(s.table)), warn)
	case "check_recipient_access":
		if t.Recipient == "" {
			return dunno
		}
		return e.access(s.table, classRecipient, mailKeys(t.Recipient, partialKeys(s.table)), warn)
	case "reject_unknown_sender_domain":
		return e.unknownDomain(t.Sender, classSender, "4.1.8", "5.1.8", warn)
	case "reject_unknown_recipient_domain":
		return e.unknownDomain(t.Recipient, classRecipient, "4.1.2", "5.1.2", warn)
	case "reject_unknown_client_hostname", "reject_unknown_client":
		return e.unknownClient(warn)
	case "reject_non_fqdn_sender":
		return e.nonFQDNAddress(t.Sender, classSender, "5.5.2", warn)
	case "reject_non_fqdn_recipient":
		return e.nonFQDNAddress(t.Recipient, classRecipient, "5.5.2", warn)
	case "reject_non_fqdn_helo_hostname", "reject_non_fqdn_hostname":
		h := t.Client.Helo
		if h == "" || isAddressLiteral(h) || (validHostname(h) && strings.Contains(strings.TrimSuffix(h, "."), ".")) {
			return dunno
		}
		return e.decide(e.reply(codes.NonFQDN, dsnFor(codes.NonFQDN, "5.5.2"), classHelo, "need fully-qualified hostname"), warn)
	case "reject_invalid_helo_hostname", "reject_invalid_hostname":
		h := t.Client.Helo
		if h == "" || validHostname(h) || isAddressLiteral(h) {
			return dunno
		}
		return e.decide(e.reply(codes.InvalidHostname, dsnFor(codes.InvalidHostname, "5.5.2"), classHelo, "Invalid name"), warn)
	case "reject_unlisted_recipient", "check_recipient_maps":
		if t.Recipient == "" {
			return dunno
		}
		e.unlistedChecked = true
		if r := e.c.unlistedRecipient(t.Recipient); r != nil {
			return e.decide(r, warn)
		}
		return dunno
	case "reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch",
		"reject_known_sender_login_mismatch", "reject_unauthenticated_sender_login_mismatch":
		return e.senderLogin(s.name, warn)
	case "reject_multi_recipient_bounce":
		if t.Sender == "" && t.NumRecipients > 1 {
			return e.decide(&Reply{Code: codes.MultiRecipientBounce, DSN: dsnFor(codes.MultiRecipientBounce, "5.5.3"),
				Text: "<DATA>: Data command rejected: Multi-recipient bounce"}, warn)
		}
		return dunno
	}
	// A restriction class.
	return e.runClass(s.name, class)
}

func (e *eval) runClass(name string, class replyClass) outcome {
	steps, ok := e.c.classes[name]
	if !ok {
		return e.configError("unknown restriction %q", name)
	}
	if e.depth >= maxDepth {
		return e.configError("restriction class %s: nesting deeper than %d", name, maxDepth)
	}
	e.depth++
	defer func() { e.depth-- }()
	saved := e.warnNext
	o := e.runList(steps, class)
	e.warnNext = saved
	return o
}

func (e *eval) setDeferIfPermit(r *Reply) {
	if e.deferIfPermit == nil {
		e.deferIfPermit = r
	}
}

// dsnFor adapts a default enhanced code to the configured reply code's class.
func dsnFor(code int, dsn string) string {
	return fmt.Sprintf("%d%s", code/100, dsn[1:])
}
