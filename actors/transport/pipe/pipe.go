package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/internal/mailbox"
	"github.com/yubin-mta/yubin/internal/mailbox/command"
)

// Delivery and Result are the shared request and answer of the delivery
// agents, repeated here so callers can write pipe.Delivery.
type (
	Delivery = mailbox.Delivery
	Result   = mailbox.Result
)

// Agent runs one pipe service. It is safe for concurrent use.
type Agent struct {
	opts  Options
	runAs mailbox.Owner
	flags flagSet
	// needSize is set when the message size must be measured first.
	needSize bool
}

type flagSet struct {
	copy     mailbox.CopyFlags
	final    bool // X
	foldHost bool // h
	foldUser bool // u
	quote    bool // q
}

// New validates opts and resolves user=. lookupUser and lookupGroup
// default to os/user.Lookup and os/user.LookupGroup.
func New(opts Options, lookupUser func(string) (*user.User, error), lookupGroup func(string) (*user.Group, error)) (*Agent, error) {
	if lookupUser == nil {
		lookupUser = user.Lookup
	}
	if lookupGroup == nil {
		lookupGroup = user.LookupGroup
	}
	if opts.Service == "" {
		return nil, fmt.Errorf("pipe: service name is empty")
	}
	if len(opts.Argv) == 0 || opts.Argv[0] == "" {
		return nil, fmt.Errorf("pipe service %s: empty argv", opts.Service)
	}
	a := &Agent{opts: opts}
	var err error
	if a.flags, err = parseFlags(opts.Flags); err != nil {
		return nil, fmt.Errorf("pipe service %s: %w", opts.Service, err)
	}
	if a.runAs, err = resolveUser(opts.User, lookupUser, lookupGroup); err != nil {
		return nil, fmt.Errorf("pipe service %s: %w", opts.Service, err)
	}
	// Reject unknown macros now rather than at every delivery.
	for _, arg := range opts.Argv {
		_, err := expand(arg, func(name string) string {
			if name == "size" {
				a.needSize = true
			}
			return ""
		})
		if err != nil {
			return nil, fmt.Errorf("pipe service %s: %w", opts.Service, err)
		}
	}
	if opts.Size > 0 {
		a.needSize = true
	}
	return a, nil
}

func parseFlags(s string) (flagSet, error) {
	var f flagSet
	for _, c := range s {
		switch c {
		case 'B':
			f.copy |= mailbox.BlankLine
		case 'D':
			f.copy |= mailbox.DeliveredTo
		case 'F':
			f.copy |= mailbox.FromLine
		case 'O':
			f.copy |= mailbox.OrigRcptHeader
		case 'R':
			f.copy |= mailbox.ReturnPath
		case 'X':
			f.final = true
		case 'h':
			f.foldHost = true
		case 'q':
			f.quote = true
		case 'u':
			f.foldUser = true
		case '.':
			f.copy |= mailbox.DotStuff
		case '>':
			f.copy |= mailbox.QuoteFrom
		default:
			return f, fmt.Errorf("unknown flag %q in flags=%s", c, s)
		}
	}
	return f, nil
}

// resolveUser turns "name" or "name:group" into ids, refusing root as
// pipe(8) does.
func resolveUser(spec string, lookupUser func(string) (*user.User, error), lookupGroup func(string) (*user.Group, error)) (mailbox.Owner, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" {
		return mailbox.Owner{}, fmt.Errorf("user= attribute is empty")
	}
	u, err := lookupUser(name)
	if err != nil {
		return mailbox.Owner{}, fmt.Errorf("user=%s: %w", spec, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return mailbox.Owner{}, fmt.Errorf("user=%s: bad uid/gid %q/%q", spec, u.Uid, u.Gid)
	}
	if hasGroup {
		g, err := lookupGroup(group)
		if err != nil {
			return mailbox.Owner{}, fmt.Errorf("user=%s: %w", spec, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return mailbox.Owner{}, fmt.Errorf("user=%s: bad gid %q", spec, g.Gid)
		}
	}
	if uid == 0 {
		return mailbox.Owner{}, fmt.Errorf("user=%s: refusing to run a command with root privileges", spec)
	}
	if gid == 0 {
		return mailbox.Owner{}, fmt.Errorf("user=%s: refusing to run a command with root group privileges", spec)
	}
	return mailbox.Owner{UID: uid, GID: gid}, nil
}

// Deliver runs the command for d.
func (a *Agent) Deliver(ctx context.Context, d *Delivery) Result {
	relay := a.opts.Service
	if err := d.Validate(); err != nil {
		return mailbox.Defer(relay, "4.3.0", "invalid delivery request: %v", err)
	}
	if a.flags.copy&mailbox.DeliveredTo != 0 {
		body, err := d.Body()
		if err != nil {
			return mailbox.Defer(relay, "4.3.0", "error reading message: %v", err)
		}
		loop, err := mailbox.HasDeliveredTo(body, d.Recipient)
		body.Close()
		if err != nil {
			return mailbox.Defer(relay, "4.3.0", "error reading message: %v", err)
		}
		if loop {
			return mailbox.Bounce(relay, "5.4.6", "mail forwarding loop for %s", d.Recipient)
		}
	}
	var size int64
	if a.needSize {
		n, err := messageSize(d)
		if err != nil {
			return mailbox.Defer(relay, "4.3.0", "error reading message: %v", err)
		}
		size = n
		if a.opts.Size > 0 && size > a.opts.Size {
			return mailbox.Bounce(relay, "5.2.3", "message too large")
		}
	}

	sender := d.Sender
	if sender == "" {
		sender = mailbox.MailerDaemon
		if a.opts.NullSender != nil {
			sender = *a.opts.NullSender
		}
	}
	values := a.macroValues(d, sender, size)
	argv := make([]string, len(a.opts.Argv))
	for i, arg := range a.opts.Argv {
		v, err := expand(arg, func(name string) string { return values[name] })
		if err != nil { // New checked the names; this is a broken Options
			return mailbox.Defer(relay, "4.3.5", "mail system configuration error: %v", err)
		}
		argv[i] = v
	}
	runAs := a.runAs
	out := command.Run(ctx, command.Spec{
		Argv:      argv,
		Command:   a.opts.Argv[0],
		Dir:       a.opts.Directory,
		RunAs:     &runAs,
		TimeLimit: a.opts.TimeLimit,
		Env:       mailbox.ExportEnvironment(mailbox.DefaultExportEnvironment()),
		Input: func(w io.Writer) error {
			body, err := d.Body()
			if err != nil {
				return fmt.Errorf("%w: %w", mailbox.ErrRead, err)
			}
			defer body.Close()
			return mailbox.Copy(w, body, mailbox.Envelope{
				Sender:        sender,
				OrigRecipient: d.OrigRecipient,
				Recipient:     d.Recipient,
				EOL:           a.opts.EOL,
			}, a.flags.copy)
		},
	})
	if out.Status != mailbox.Sent {
		return Result{Status: out.Status, DSN: out.DSN, Relay: relay, Reply: out.Reason}
	}
	res := mailbox.Delivered(relay, "delivered via %s service", a.opts.Service)
	if out.Output != "" {
		res.Reply += " (" + out.Output + ")"
	}
	if !a.flags.final {
		res.Action = "relayed"
	}
	return res
}

// macroValues computes the argv macros for d with the q, u and h flags
// applied as pipe(8) describes.
func (a *Agent) macroValues(d *Delivery, sender string, size int64) map[string]string {
	orig := d.OrigRecipient
	if orig == "" {
		orig = d.Recipient
	}
	local, domain := address.Split(d.Recipient)
	user, ext := address.UserExtension(local, a.opts.RecipientDelimiter)
	if a.flags.foldUser {
		local, user, ext = strings.ToLower(local), strings.ToLower(user), strings.ToLower(ext)
	}
	nexthop := d.Nexthop
	if a.flags.foldHost {
		domain, nexthop = strings.ToLower(domain), strings.ToLower(nexthop)
	}
	if a.flags.quote && sender != "" {
		sender = mailbox.QuoteLocal(sender)
	}
	return map[string]string{
		"sender":             sender,
		"recipient":          a.address(d.Recipient),
		"original_recipient": a.address(orig),
		"user":               user,
		"extension":          ext,
		"mailbox":            local,
		"domain":             domain,
		"nexthop":            nexthop,
		"queue_id":           d.QueueID,
		"size":               strconv.FormatInt(size, 10),
	}
}

// address applies u (fold localpart), h (fold domain) and q (quote
// localpart) to a full recipient address.
func (a *Agent) address(addr string) string {
	local, domain := address.Split(addr)
	if a.flags.foldUser {
		local = strings.ToLower(local)
	}
	if a.flags.foldHost {
		domain = strings.ToLower(domain)
	}
	out := local
	if strings.Contains(addr, "@") {
		out += "@" + domain
	}
	if a.flags.quote {
		out = mailbox.QuoteLocal(out)
	}
	return out
}

func messageSize(d *Delivery) (int64, error) {
	body, err := d.Body()
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.Copy(io.Discard, body)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return n, nil
}
