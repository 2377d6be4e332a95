package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/internal/mailbox"
	"github.com/yubin-mta/yubin/internal/mailbox/command"
)

// Relay is the name this agent reports as relay=.
const Relay = "local"

// Delivery and Result are the shared request and answer of the delivery
// agents, repeated here so callers can write local.Delivery.
type (
	Delivery = mailbox.Delivery
	Result   = mailbox.Result
)

// Options are the main.cf parameters local(8) uses. Empty fields take
// Postfix's defaults.
type Options struct {
	// MailSpoolDirectory is mail_spool_directory (default /var/mail); a
	// name ending in "/" means Maildir delivery to spool/user/.
	MailSpoolDirectory string
	// HomeMailbox is home_mailbox: "" (mbox in the spool), a file such
	// as "Mailbox", or a maildir such as "Maildir/", relative to $HOME.
	HomeMailbox string
	// MailboxCommand is mailbox_command; when set it delivers instead of
	// HomeMailbox and the spool.
	MailboxCommand string
	// Hostname is myhostname, used in Maildir file names.
	Hostname string
	// LookupUser finds a user in the passwd database (default
	// os/user.Lookup).
	LookupUser func(name string) (*user.User, error)
	// LookupShell returns a user's login shell for $SHELL (default: read
	// /etc/passwd; os/user does not know shells).
	LookupShell func(name string) string
	// CommandTimeout is command_time_limit (default 1000s).
	CommandTimeout time.Duration
	// AllowMailToCommands and AllowMailToFiles are the allow_mail_to_*
	// class lists ("alias", "forward", "include"); empty means Postfix's
	// default "alias, forward".
	AllowMailToCommands, AllowMailToFiles string
	// RecipientDelimiter is recipient_delimiter (default none).
	RecipientDelimiter string
	// DefaultPrivs is default_privs (default "nobody"): the rights for
	// commands and files when the owner would otherwise be root.
	DefaultPrivs string
	// ExportEnvironment is export_environment (default TZ MAIL_CONFIG LANG).
	ExportEnvironment []string
	// MailboxLock is mailbox_delivery_lock and the lock retry settings
	// (default fcntl, dotlock; 20 attempts 1s apart).
	MailboxLock mailbox.LockOptions
}

// Agent delivers mail like Postfix local(8). It is safe for concurrent use.
type Agent struct {
	opts         Options
	allowCommand map[string]bool
	allowFile    map[string]bool
}

// New returns an Agent with opts, defaults filled in and validated.
func New(opts Options) (*Agent, error) {
	if opts.MailSpoolDirectory == "" {
		opts.MailSpoolDirectory = "/var/mail"
	}
	if !filepath.IsAbs(opts.MailSpoolDirectory) {
		return nil, fmt.Errorf("mail_spool_directory %q is not an absolute path", opts.MailSpoolDirectory)
	}
	if filepath.IsAbs(opts.HomeMailbox) || strings.Contains("/"+opts.HomeMailbox+"/", "/../") {
		return nil, fmt.Errorf("home_mailbox %q must be a path relative to the home directory", opts.HomeMailbox)
	}
	if opts.LookupUser == nil {
		opts.LookupUser = user.Lookup
	}
	if opts.LookupShell == nil {
		opts.LookupShell = func(name string) string { return mailbox.PasswdShell("/etc/passwd", name) }
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = command.DefaultTimeLimit
	}
	if opts.DefaultPrivs == "" {
		opts.DefaultPrivs = "nobody"
	}
	if opts.ExportEnvironment == nil {
		opts.ExportEnvironment = mailbox.DefaultExportEnvironment()
	}
	if opts.MailboxLock.Style == 0 {
		opts.MailboxLock.Style = mailbox.DefaultLockStyle
	}
	a := &Agent{opts: opts}
	var err error
	if a.allowCommand, err = parseClasses("allow_mail_to_commands", opts.AllowMailToCommands); err != nil {
		return nil, err
	}
	if a.allowFile, err = parseClasses("allow_mail_to_files", opts.AllowMailToFiles); err != nil {
		return nil, err
	}
	return a, nil
}

func parseClasses(param, v string) (map[string]bool, error) {
	if strings.TrimSpace(v) == "" {
		v = "alias, forward"
	}
	set := map[string]bool{}
	for _, c := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		switch c = strings.ToLower(c); c {
		case "alias", "forward", "include":
			set[c] = true
		default:
			return nil, fmt.Errorf("%s: unknown class %q (want alias, forward or include)", param, c)
		}
	}
	return set, nil
}

// recipient is the parsed delivery recipient.
type recipient struct {
	address   string
	local     string // entire localpart
	name      string // bare user name, folded to lower case
	extension string
	domain    string
}

// Deliver delivers d and reports the outcome. It never panics on bad
// input; a malformed request defers with 4.3.0.
func (a *Agent) Deliver(ctx context.Context, d *Delivery) Result {
	if err := d.Validate(); err != nil {
		return mailbox.Defer(Relay, "4.3.0", "invalid delivery request: %v", err)
	}
	local, domain := address.Split(d.Recipient)
	name, ext := address.UserExtension(local, a.opts.RecipientDelimiter)
	rcpt := recipient{address: d.Recipient, local: local, name: strings.ToLower(name), extension: ext, domain: domain}
	if rcpt.name == "" {
		return mailbox.Bounce(Relay, "5.1.1", "unknown user: %q", rcpt.name)
	}

	if loop, err := hasLoop(d); err != nil {
		return mailbox.Defer(Relay, "4.3.0", "%v", err)
	} else if loop {
		return mailbox.Bounce(Relay, "5.4.6", "mail forwarding loop for %s", d.Recipient)
	}

	switch t := d.Target; {
	case t == "":
		return a.deliverMailbox(ctx, d, rcpt)
	case strings.HasPrefix(t, "|"):
		return a.deliverTargetCommand(ctx, d, rcpt, strings.TrimSpace(t[1:]))
	case strings.HasPrefix(t, "/"):
		return a.deliverFile(ctx, d, rcpt, t)
	default:
		return mailbox.Defer(Relay, "4.3.5", "unsupported delivery target %q from %s", t, d.AliasOwner)
	}
}

func hasLoop(d *Delivery) (bool, error) {
	body, err := d.Body()
	if err != nil {
		return false, fmt.Errorf("error reading message: %w", err)
	}
	defer body.Close()
	loop, err := mailbox.HasDeliveredTo(body, d.Recipient)
	if err != nil {
		return false, fmt.Errorf("error reading message: %w", err)
	}
	return loop, nil
}

// deliverMailbox is the user's own mailbox: mailbox_command, home_mailbox
// or the spool, in Postfix's order of precedence.
func (a *Agent) deliverMailbox(ctx context.Context, d *Delivery, rcpt recipient) Result {
	u, res, ok := a.lookupUser(rcpt.name)
	if !ok {
		return res
	}
	owner, err := ownerOf(u)
	if err != nil {
		return mailbox.Defer(Relay, "4.3.0", "user %s: %v", rcpt.name, err)
	}
	if a.opts.MailboxCommand != "" {
		runAs, res, ok := a.privileges(owner)
		if !ok {
			return res
		}
		return a.runCommand(ctx, d, rcpt, u, runAs, a.opts.MailboxCommand)
	}
	if a.opts.HomeMailbox != "" {
		owner.Enforce = true // written with the user's rights
		path := filepath.Join(u.HomeDir, a.opts.HomeMailbox)
		if strings.HasSuffix(a.opts.HomeMailbox, "/") {
			return a.writeMaildir(ctx, d, path, owner)
		}
		return a.writeMbox(ctx, d, rcpt, path, owner)
	}
	// The spool directory is not the user's to write: create as root and
	// give the file to the user.
	if strings.HasSuffix(a.opts.MailSpoolDirectory, "/") {
		return a.writeMaildir(ctx, d, filepath.Join(a.opts.MailSpoolDirectory, rcpt.name), owner)
	}
	return a.writeMbox(ctx, d, rcpt, filepath.Join(a.opts.MailSpoolDirectory, rcpt.name), owner)
}

func (a *Agent) writeMbox(ctx context.Context, d *Delivery, rcpt recipient, path string, owner mailbox.Owner) Result {
	opts := mailbox.MboxOptions{Owner: owner, StrictOwnership: true, Lock: a.opts.MailboxLock}
	err := mailbox.AppendMbox(ctx, path, opts, func(w io.Writer) error {
		return d.CopyMessage(w, mailbox.MboxFlags)
	})
	if err != nil {
		return mailbox.FromDSN(Relay, mailbox.DSNForError(err, "4.2.0"),
			fmt.Sprintf("cannot update mailbox %s for user %s. %v", path, rcpt.name, err))
	}
	return mailbox.Delivered(Relay, "delivered to mailbox")
}

func (a *Agent) writeMaildir(ctx context.Context, d *Delivery, dir string, owner mailbox.Owner) Result {
	opts := mailbox.MaildirOptions{Owner: owner, Hostname: a.opts.Hostname}
	_, err := mailbox.DeliverMaildir(ctx, dir, opts, func(w io.Writer) error {
		return d.CopyMessage(w, mailbox.MaildirFlags)
	})
	if err != nil {
		return mailbox.FromDSN(Relay, mailbox.DSNForError(err, "4.2.0"), fmt.Sprintf("maildir delivery failed: %v", err))
	}
	return mailbox.Delivered(Relay, "delivered to maildir")
}

// deliverTargetCommand runs the "|command" an alias or .forward named.
func (a *Agent) deliverTargetCommand(ctx context.Context, d *Delivery, rcpt recipient, cmdline string) Result {
	if !a.allowCommand[targetClass(d)] {
		return mailbox.Bounce(Relay, "5.7.1", "mail to command is restricted")
	}
	if cmdline == "" {
		return mailbox.Bounce(Relay, "5.3.5", "empty command in alias %s", d.AliasOwner)
	}
	u, runAs, res, ok := a.targetRights(d, rcpt)
	if !ok {
		return res
	}
	return a.runCommand(ctx, d, rcpt, u, runAs, cmdline)
}

func (a *Agent) runCommand(ctx context.Context, d *Delivery, rcpt recipient, u *user.User, runAs mailbox.Owner, cmdline string) Result {
	out := command.Run(ctx, command.Spec{
		Command:   cmdline,
		Env:       a.commandEnv(d, rcpt, u),
		RunAs:     &runAs,
		TimeLimit: a.opts.CommandTimeout,
		Input: func(w io.Writer) error {
			return d.CopyMessage(w, mailbox.CommandFlags)
		},
	})
	if out.Status == mailbox.Sent {
		return mailbox.Delivered(Relay, "delivered to command: %s", cmdline)
	}
	return mailbox.Result{Status: out.Status, DSN: out.DSN, Relay: Relay, Reply: out.Reason}
}

// deliverFile appends to the "/file" (mbox) or "/dir/" (Maildir) an alias
// or .forward named.
func (a *Agent) deliverFile(ctx context.Context, d *Delivery, rcpt recipient, path string) Result {
	if !a.allowFile[targetClass(d)] {
		return mailbox.Bounce(Relay, "5.7.1", "mail to file is restricted")
	}
	_, owner, res, ok := a.targetRights(d, rcpt)
	if !ok {
		return res
	}
	owner.Enforce = true
	if strings.HasSuffix(path, "/") {
		return a.writeMaildir(ctx, d, path, owner)
	}
	opts := mailbox.MboxOptions{Owner: owner, Lock: a.opts.MailboxLock}
	err := mailbox.AppendMbox(ctx, filepath.Clean(path), opts, func(w io.Writer) error {
		return d.CopyMessage(w, mailbox.MboxFlags)
	})
	if err != nil {
		return mailbox.FromDSN(Relay, mailbox.DSNForError(err, "5.2.0"),
			fmt.Sprintf("cannot append message to file %s: %v", path, err))
	}
	return mailbox.Delivered(Relay, "delivered to file: %s", path)
}

func targetClass(d *Delivery) string {
	if d.TargetClass == "" {
		return "alias"
	}
	return d.TargetClass
}

// targetRights picks whose rights a command or file target uses: the
// alias owner when given, else the recipient user for .forward targets,
// else default_privs. Root is always replaced by default_privs. The user
// (for $HOME and $SHELL) is the recipient if the passwd database knows
// them, which an alias name need not be.
func (a *Agent) targetRights(d *Delivery, rcpt recipient) (*user.User, mailbox.Owner, Result, bool) {
	u, err := a.opts.LookupUser(rcpt.name)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return nil, mailbox.Owner{}, mailbox.Defer(Relay, "4.3.0", "user lookup for %s failed: %v", rcpt.name, err), false
		}
		u = nil
	}
	var owner mailbox.Owner
	switch {
	case d.AliasOwnerID != nil:
		owner = *d.AliasOwnerID
	case targetClass(d) == "forward" && u != nil:
		if owner, err = ownerOf(u); err != nil {
			return nil, owner, mailbox.Defer(Relay, "4.3.0", "user %s: %v", rcpt.name, err), false
		}
	case targetClass(d) == "forward":
		return nil, owner, mailbox.Bounce(Relay, "5.1.1", "unknown user: %q", rcpt.name), false
	default:
		owner = mailbox.Owner{UID: 0, GID: 0}
	}
	runAs, res, ok := a.privileges(owner)
	return u, runAs, res, ok
}

// privileges replaces root with default_privs, as local(8) never runs a
// command or writes a file as the superuser.
func (a *Agent) privileges(o mailbox.Owner) (mailbox.Owner, Result, bool) {
	if o.UID != 0 {
		return o, Result{}, true
	}
	u, err := a.opts.LookupUser(a.opts.DefaultPrivs)
	if err != nil {
		return o, mailbox.Defer(Relay, "4.3.5", "default_privs user %q: %v", a.opts.DefaultPrivs, err), false
	}
	p, err := ownerOf(u)
	if err != nil || p.UID == 0 {
		return o, mailbox.Defer(Relay, "4.3.5", "default_privs user %q is unusable", a.opts.DefaultPrivs), false
	}
	return p, Result{}, true
}

func (a *Agent) lookupUser(name string) (*user.User, Result, bool) {
	u, err := a.opts.LookupUser(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, mailbox.Bounce(Relay, "5.1.1", "unknown user: %q", name), false
		}
		return nil, mailbox.Defer(Relay, "4.3.0", "user lookup for %s failed: %v", name, err), false
	}
	return u, Result{}, true
}

func ownerOf(u *user.User) (mailbox.Owner, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return mailbox.Owner{}, fmt.Errorf("bad uid %q", u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return mailbox.Owner{}, fmt.Errorf("bad gid %q", u.Gid)
	}
	return mailbox.Owner{UID: uid, GID: gid}, nil
}

// commandEnv is local(8)'s environment for external commands, every value
// passed through command_expansion_filter.
func (a *Agent) commandEnv(d *Delivery, rcpt recipient, u *user.User) []string {
	f := func(name, v string) string {
		return name + "=" + mailbox.FilterValue(v, mailbox.CommandExpansionFilter)
	}
	env := mailbox.ExportEnvironment(a.opts.ExportEnvironment)
	if u != nil {
		env = append(env, f("HOME", u.HomeDir))
		if sh := a.opts.LookupShell(u.Username); sh != "" {
			env = append(env, f("SHELL", sh))
		}
	}
	env = append(env,
		f("LOGNAME", rcpt.name),
		f("USER", rcpt.name),
		f("LOCAL", rcpt.local),
		f("DOMAIN", rcpt.domain),
		f("RECIPIENT", rcpt.address),
		f("SENDER", d.Sender),
	)
	if rcpt.extension != "" {
		env = append(env, f("EXTENSION", rcpt.extension))
	}
	if d.OrigRecipient != "" {
		env = append(env, f("ORIGINAL_RECIPIENT", d.OrigRecipient))
	}
	return env
}
