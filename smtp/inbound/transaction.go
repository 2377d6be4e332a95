package inbound

import (
	"context"
	"errors"
	"strings"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/queue"
	"github.com/yubin-mta/yubin/smtp/inbound/anvil"
	"github.com/yubin-mta/yubin/smtp/policy"
)

// transaction is one MAIL ... DATA exchange.
type transaction struct {
	id       string // queue ID, allocated at the first accepted RCPT
	started  time.Time
	sender   address.Path
	size     int64 // SIZE=
	body     string
	ret      string
	envid    string
	smtputf8 bool
	rcpts    []queue.Recipient

	hold     bool
	discard  bool
	redirect string
	prepend  []string
}

func (st *connState) endTransaction() { st.tx, st.pendingMail, st.pendingRcpt = nil, nil, nil }

// queueID is the log prefix: the queue ID, or NOQUEUE before one exists.
func (st *connState) queueID() string {
	if st.tx != nil && st.tx.id != "" {
		return st.tx.id
	}
	return "NOQUEUE"
}

// envelopeText is the "; from=<..> to=<..> proto=ESMTP helo=<..>" tail of
// Postfix's reject and action log lines.
func (st *connState) envelopeText(rcpt string) string {
	var b strings.Builder
	if st.tx != nil {
		b.WriteString(" from=<" + st.tx.sender.String() + ">")
	}
	if rcpt != "" {
		b.WriteString(" to=<" + rcpt + ">")
	}
	b.WriteString(" proto=" + st.protoName())
	b.WriteString(" helo=<" + st.helo + ">")
	return ";" + b.String()
}

// protoName is "SMTP" or "ESMTP", as in Postfix's reject lines.
func (st *connState) protoName() string {
	if st.esmtp {
		return "ESMTP"
	}
	return "SMTP"
}

// receivedProto is the "with" word of Received: (RFC 3848, RFC 6531).
func (st *connState) receivedProto() string {
	p := st.protoName()
	if p == "SMTP" {
		return p
	}
	if st.tx != nil && st.tx.smtputf8 {
		p = "UTF8SMTP"
	}
	if st.tls {
		p += "S"
	}
	if st.saslUser != "" {
		p += "A"
	}
	return p
}

// logEvents writes policy events as Postfix's log_whatsup lines.
func (st *connState) logEvents(stage string, events []policy.Event, rcpt string) {
	for _, e := range events {
		if e.Action == "warning" {
			st.srv.logf("warning: %s", e.Text)
			continue
		}
		st.srv.logf("%s: %s: %s from %s: %s%s", st.queueID(), e.Action, stage, st.client.NameAddr(), e.Text, st.envelopeText(rcpt))
	}
}

func (st *connState) logReject(stage string, r *smtp.SMTPError, rcpt string) {
	st.srv.logf("%s: reject: %s from %s: %d %d.%d.%d %s%s", st.queueID(), stage, st.client.NameAddr(),
		r.Code, r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2], r.Message, st.envelopeText(rcpt))
}

func (st *connState) checkMail(arg string) error {
	s := st.srv.s
	if s.HeloRequired && st.helo == "" {
		return reply(503, "5.5.1", "Error: send HELO/EHLO first")
	}
	if s.TLSRequired && !st.tls {
		return reply(530, "5.7.0", "Must issue a STARTTLS command first")
	}
	if st.tx != nil {
		return reply(503, "5.5.1", "Error: nested MAIL command")
	}
	if len(arg) < 5 || !strings.EqualFold(arg[:5], "FROM:") {
		return reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
	}
	path, params, err := address.ParseMailArg(arg)
	if err != nil {
		if errors.Is(err, address.ErrBadParameter) {
			return reply(501, "5.5.4", "Bad MAIL parameter syntax")
		}
		st.srv.logf("warning: Illegal address syntax from %s in MAIL command: %s", st.client.NameAddr(), truncate(strings.TrimSpace(arg[5:]), 300))
		return reply(501, "5.1.7", "Bad sender address syntax")
	}
	for key, value := range params {
		switch key {
		case "SIZE":
			if !allDigits(value) {
				return reply(501, "5.5.4", "Bad message size syntax")
			}
			if s.MessageSizeLimit > 0 && (len(value) > 18 || parseInt(value) > s.MessageSizeLimit) {
				return reply(552, "5.3.4", "Message size exceeds fixed limit")
			}
		case "BODY":
			if v := strings.ToUpper(value); v != "7BIT" && v != "8BITMIME" {
				return reply(501, "5.5.4", "Unsupported BODY parameter value")
			}
		case "RET":
			if v := strings.ToUpper(value); v != "FULL" && v != "HDRS" {
				return reply(501, "5.5.4", "Bad RET parameter syntax")
			}
		case "ENVID":
			if value == "" || len(value) > 100 {
				return reply(501, "5.5.4", "Bad ENVID parameter syntax")
			}
		case "SMTPUTF8":
			if s.DisableSMTPUTF8 || value != "" {
				return reply(555, "5.5.4", "Unsupported option: "+key)
			}
		case "AUTH":
			// RFC 4954 5: accepted and ignored.
		default:
			return reply(555, "5.5.4", "Unsupported option: "+key)
		}
	}
	if _, utf8 := params["SMTPUTF8"]; path.UTF8 && !utf8 {
		return reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address")
	}
	if err := st.checkRate(anvil.Message); err != nil {
		return err
	}
	st.pendingMail = &mailArgs{path: path, params: params}
	return nil
}

func (st *connState) checkRcpt(arg string) error {
	if st.tx == nil {
		return reply(503, "5.5.1", "Error: need MAIL command")
	}
	if len(arg) < 3 || !strings.EqualFold(arg[:3], "TO:") {
		return reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
	}
	path, params, err := address.ParseRcptArg(arg)
	if err == nil && path.Null {
		err = address.ErrSyntax
	}
	if err != nil {
		if errors.Is(err, address.ErrBadParameter) {
			return reply(501, "5.5.4", "Bad RCPT parameter syntax")
		}
		st.srv.logf("warning: Illegal address syntax from %s in RCPT command: %s", st.client.NameAddr(), truncate(strings.TrimSpace(arg[3:]), 300))
		return reply(501, "5.1.3", "Bad recipient address syntax")
	}
	for key := range params {
		if key != "NOTIFY" && key != "ORCPT" {
			return reply(555, "5.5.4", "Unsupported option: "+key)
		}
	}
	if path.UTF8 && !st.tx.smtputf8 {
		return reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address")
	}
	if len(st.tx.rcpts) >= st.srv.s.RecipientLimit {
		return reply(452, "4.5.3", "Error: too many recipients")
	}
	if err := st.checkRate(anvil.Recipient); err != nil {
		return err
	}
	st.pendingRcpt = &rcptArgs{path: path, params: params}
	return nil
}

func (st *connState) checkData(arg string) error {
	if arg != "" {
		return reply(501, "5.5.4", "Syntax: DATA")
	}
	if st.tx == nil {
		return reply(503, "5.5.1", "Error: need RCPT command")
	}
	if len(st.tx.rcpts) == 0 {
		return reply(554, "5.5.1", "Error: no valid recipients")
	}
	t := st.policyTx("")
	if len(st.tx.rcpts) == 1 {
		t.Recipient = givenAddr(st.tx.rcpts[0])
	}
	res := st.srv.s.Policy.CheckData(st.srv.base, t)
	st.logEvents("DATA", res.Events, t.Recipient)
	st.applyActions(res)
	if res.Reply != nil {
		r := policyReply(res.Reply)
		st.logReject("DATA", r, t.Recipient)
		return r
	}
	return nil
}

func (st *connState) policyTx(rcpt string) *policy.Transaction {
	t := &policy.Transaction{Client: st.client, Recipient: rcpt}
	t.Client.SASLUser = st.saslUser
	if st.tx != nil {
		t.Sender = st.tx.sender.String()
		t.NumRecipients = len(st.tx.rcpts)
	}
	return t
}

func (st *connState) applyActions(res policy.Result) {
	if st.tx == nil {
		return
	}
	st.tx.hold = st.tx.hold || res.Hold
	st.tx.discard = st.tx.discard || res.Discard
	if res.Redirect != "" {
		st.tx.redirect = res.Redirect
	}
	st.tx.prepend = append(st.tx.prepend, res.Prepend...)
}

// startMail begins a transaction from the arguments checkMail parsed.
func (st *connState) startMail() error {
	m := st.pendingMail
	st.pendingMail = nil
	if m == nil {
		return reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
	}
	if err := st.srv.checkStorage(); err != nil {
		return err
	}
	tx := &transaction{started: st.srv.s.Now(), sender: m.path}
	for key, value := range m.params {
		switch key {
		case "SIZE":
			tx.size = parseInt(value)
		case "BODY":
			tx.body = strings.ToUpper(value)
		case "RET":
			tx.ret = strings.ToUpper(value)
		case "ENVID":
			tx.envid = value
		case "SMTPUTF8":
			tx.smtputf8 = true
		}
	}
	st.tx = tx
	return nil
}

// addRcpt applies the restrictions to the recipient checkRcpt parsed.
func (st *connState) addRcpt(opts *smtp.RcptOptions) error {
	r := st.pendingRcpt
	st.pendingRcpt = nil
	if r == nil || st.tx == nil {
		return reply(503, "5.5.1", "Error: need MAIL command")
	}
	rcpt := r.path.String()
	if r.path.Domain == "" {
		rcpt += "@" + st.srv.s.MyOrigin // <postmaster>
	}
	ctx, cancel := context.WithTimeout(st.srv.base, st.srv.s.Timeout)
	defer cancel()
	res := st.srv.s.Policy.CheckRecipient(ctx, st.policyTx(r.path.String()))
	if res.Reply != nil {
		st.logEvents("RCPT", res.Events, r.path.String())
		e := policyReply(res.Reply)
		st.logReject("RCPT", e, r.path.String())
		return e
	}
	if st.tx.id == "" {
		// smtpd_delay_open_until_valid_rcpt = yes: the queue file (and
		// its ID) exists from the first accepted recipient on.
		st.tx.id = st.srv.q.NewID()
		client := "client=" + st.client.NameAddr()
		if st.saslUser != "" {
			client += ", sasl_method=" + st.saslMeth + ", sasl_username=" + st.saslUser
		}
		st.srv.logf("%s: %s", st.tx.id, client)
	}
	st.logEvents("RCPT", res.Events, r.path.String())
	st.applyActions(res)
	rc := queue.Recipient{Addr: address.Canonical(rcpt)}
	if rc.Addr != r.path.String() {
		rc.OrigAddr = r.path.String()
	}
	if opts != nil {
		var notify []string
		for _, n := range opts.Notify {
			notify = append(notify, string(n))
		}
		rc.Notify = strings.Join(notify, ",")
		if opts.OriginalRecipient != "" {
			rc.ORCPT = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
		}
	}
	st.tx.rcpts = append(st.tx.rcpts, rc)
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseInt parses a validated digit string, saturating instead of
// overflowing.
func parseInt(s string) int64 {
	var n int64
	for i := 0; i < len(s); i++ {
		if n > (1<<62)/10 {
			return 1 << 62
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

// givenAddr is the recipient as the client wrote it.
func givenAddr(r queue.Recipient) string {
	if r.OrigAddr != "" {
		return r.OrigAddr
	}
	return r.Addr
}

// checkStorage refuses a new transaction when the queue's disk is nearly
// full, as Postfix's smtpd does with queue_minfree: the client retries later
// (or elsewhere) instead of the queue failing mid-message.
func (srv *Server) checkStorage() error {
	if srv.s.FreeSpace == nil {
		return nil
	}
	free, err := srv.s.FreeSpace()
	limit := srv.s.MessageSizeLimit
	if limit >= 1<<40 {
		limit = 0 // no size limit
	}
	need := max(srv.s.QueueMinFree, limit+limit/2)
	if err != nil || free < need {
		if srv.s.Log != nil {
			srv.s.Log.Printf(srv.s.ServiceName, "warning: not enough free space in the queue file system: %d bytes free, %d needed", free, need)
		}
		return reply(452, "4.3.1", "Insufficient system storage")
	}
	return nil
}
