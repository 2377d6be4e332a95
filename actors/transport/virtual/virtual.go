package virtual

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/internal/mailbox"
)

// Relay is the name this agent reports as relay=.
const Relay = "virtual"

// Delivery and Result are the shared request and answer of the delivery
// agents, repeated here so callers can write virtual.Delivery.
type (
	Delivery = mailbox.Delivery
	Result   = mailbox.Result
)

// Options are the main.cf parameters virtual(8) uses.
type Options struct {
	// MailboxBase is virtual_mailbox_base, prepended to every mailbox
	// path from MailboxMaps. It must be absolute.
	MailboxBase string
	// MailboxMaps, UIDMaps and GIDMaps are virtual_mailbox_maps,
	// virtual_uid_maps and virtual_gid_maps (e.g. "static:5000").
	MailboxMaps, UIDMaps, GIDMaps lookup.Table
	// MinimumUID is virtual_minimum_uid (default 100).
	MinimumUID int
	// Hostname is myhostname, used in Maildir file names.
	Hostname string
	// RecipientDelimiter is recipient_delimiter (default none).
	RecipientDelimiter string
	// MailboxLock is virtual_mailbox_lock and the lock retry settings
	// (default fcntl, dotlock).
	MailboxLock mailbox.LockOptions
}

// Agent delivers mail like Postfix virtual(8). It is safe for concurrent
// use as long as its tables are.
type Agent struct {
	opts Options
}

// New returns an Agent with opts validated and defaults filled in.
func New(opts Options) (*Agent, error) {
	if opts.MailboxBase == "" || !filepath.IsAbs(opts.MailboxBase) {
		return nil, fmt.Errorf("virtual_mailbox_base %q must be an absolute path", opts.MailboxBase)
	}
	if opts.MailboxMaps == nil {
		return nil, fmt.Errorf("virtual_mailbox_maps is empty")
	}
	if opts.UIDMaps == nil || opts.GIDMaps == nil {
		return nil, fmt.Errorf("virtual_uid_maps and virtual_gid_maps must be set")
	}
	if opts.MinimumUID <= 0 {
		opts.MinimumUID = 100
	}
	if opts.MailboxLock.Style == 0 {
		opts.MailboxLock.Style = mailbox.DefaultLockStyle
	}
	return &Agent{opts: opts}, nil
}

// Deliver delivers d to the recipient's virtual mailbox.
func (a *Agent) Deliver(ctx context.Context, d *Delivery) Result {
	if err := d.Validate(); err != nil {
		return mailbox.Defer(Relay, "4.3.0", "invalid delivery request: %v", err)
	}
	rcpt := strings.ToLower(d.Recipient)

	body, err := d.Body()
	if err != nil {
		return mailbox.Defer(Relay, "4.3.0", "error reading message: %v", err)
	}
	loop, err := mailbox.HasDeliveredTo(body, d.Recipient)
	body.Close()
	if err != nil {
		return mailbox.Defer(Relay, "4.3.0", "error reading message: %v", err)
	}
	if loop {
		return mailbox.Bounce(Relay, "5.4.6", "mail forwarding loop for %s", d.Recipient)
	}

	table := a.opts.MailboxMaps.Name()
	mbox, found, err := a.find(a.opts.MailboxMaps, rcpt)
	if err != nil {
		return mailbox.Result{Status: mailbox.Deferred, DSN: "4.3.0", Relay: Relay, Reply: "table lookup failure",
			Warning: fmt.Sprintf("table %s: lookup %s: %v", table, rcpt, err)}
	}
	if !found {
		return mailbox.Bounce(Relay, "5.1.1", "unknown user: %q", d.Recipient)
	}
	uid, res, ok := a.numericID(a.opts.UIDMaps, rcpt, "uid")
	if !ok {
		return res
	}
	gid, res, ok := a.numericID(a.opts.GIDMaps, rcpt, "gid")
	if !ok {
		return res
	}
	mbox = strings.TrimSpace(mbox)
	if mbox == "" || strings.HasPrefix(mbox, "/") || strings.Contains("/"+mbox+"/", "/../") {
		return configError(fmt.Sprintf("recipient %s: bad mailbox path %q in %s", rcpt, mbox, table))
	}
	owner := mailbox.Owner{UID: uid, GID: gid, Enforce: true}
	path := a.opts.MailboxBase + "/" + mbox

	// virtual(8) bounces only for a full mailbox (5.2.2); every other
	// failure defers (4.2.0, or 4.3.1 for a full disk).
	if strings.HasSuffix(mbox, "/") {
		_, err := mailbox.DeliverMaildir(ctx, path, mailbox.MaildirOptions{Owner: owner, Hostname: a.opts.Hostname},
			func(w io.Writer) error { return d.CopyMessage(w, mailbox.MaildirFlags) })
		if err != nil {
			return mailbox.FromDSN(Relay, mailbox.DSNForError(err, "4.2.0"), fmt.Sprintf("maildir delivery failed: %v", err))
		}
		return mailbox.Delivered(Relay, "delivered to maildir")
	}
	opts := mailbox.MboxOptions{Owner: owner, StrictOwnership: true, Lock: a.opts.MailboxLock}
	err = mailbox.AppendMbox(ctx, filepath.Clean(path), opts,
		func(w io.Writer) error { return d.CopyMessage(w, mailbox.MboxFlags) })
	if err != nil {
		return mailbox.FromDSN(Relay, mailbox.DSNForError(err, "4.2.0"),
			fmt.Sprintf("cannot update mailbox %s for user %s. %v", path, rcpt, err))
	}
	return mailbox.Delivered(Relay, "delivered to mailbox")
}

// configError defers with Postfix's public text and keeps the details for
// the warning log line.
func configError(warning string) Result {
	return mailbox.Result{Status: mailbox.Deferred, DSN: "4.3.5", Relay: Relay,
		Reply: "mail system configuration error", Warning: warning}
}

// numericID looks up the uid or gid of rcpt and checks it.
func (a *Agent) numericID(table lookup.Table, rcpt, what string) (int, Result, bool) {
	v, found, err := a.find(table, rcpt)
	if err != nil {
		return 0, mailbox.Result{Status: mailbox.Deferred, DSN: "4.3.0", Relay: Relay, Reply: "table lookup failure",
			Warning: fmt.Sprintf("table %s: lookup %s: %v", table.Name(), rcpt, err)}, false
	}
	if !found {
		return 0, configError(fmt.Sprintf("recipient %s: %s not found in %s", rcpt, what, table.Name())), false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, configError(fmt.Sprintf("recipient %s: bad %s %s in %s", rcpt, what, v, table.Name())), false
	}
	if what == "uid" && n < a.opts.MinimumUID {
		return 0, configError(fmt.Sprintf("recipient %s: bad uid %s in %s", rcpt, v, table.Name())), false
	}
	return n, Result{}, true
}

// find searches table in virtual(8)'s order: user+ext@domain,
// user@domain, @domain.
func (a *Agent) find(table lookup.Table, rcpt string) (value string, found bool, err error) {
	for _, k := range searchKeys(rcpt, a.opts.RecipientDelimiter) {
		v, ok, err := table.Lookup(k)
		if err != nil || ok {
			return v, ok, err
		}
	}
	return "", false, nil
}

func searchKeys(rcpt, delim string) []string {
	local, domain := address.Split(rcpt)
	keys := []string{rcpt}
	if user, ext := address.UserExtension(local, delim); ext != "" {
		keys = append(keys, user+"@"+domain)
	}
	if domain != "" {
		keys = append(keys, "@"+domain)
	}
	return keys
}
