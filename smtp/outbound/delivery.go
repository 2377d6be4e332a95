package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// delivery is the state of one Deliver call.
type delivery struct {
	c   *Client
	req *Request

	results []Result
	done    []bool
	dupOf   []int // index of the first recipient with the same address, or -1
	pending []int // unique recipients still without a final result

	lastFail  *failure // most recent soft failure, for recipients left over
	start     time.Time
	setupDone time.Time
	relay     string
	connUse   int
}

func newDelivery(c *Client, req *Request) *delivery {
	n := len(req.Recipients)
	d := &delivery{c: c, req: req, results: make([]Result, n), done: make([]bool, n),
		dupOf: make([]int, n), start: c.opts.Now(), relay: "none"}
	first := map[string]int{}
	for i, r := range req.Recipients {
		d.results[i].Addr = r.Addr
		d.dupOf[i] = -1
		if j, ok := first[r.Addr]; ok {
			d.dupOf[i] = j
			continue
		}
		first[r.Addr] = i
		d.pending = append(d.pending, i)
	}
	return d
}

func (d *delivery) outcome() Outcome {
	end := d.c.opts.Now()
	if d.setupDone.IsZero() {
		d.setupDone = end
	}
	for i, j := range d.dupOf {
		if j >= 0 {
			d.results[i] = d.results[j]
			d.results[i].Addr = d.req.Recipients[i].Addr
		}
	}
	return Outcome{Results: d.results, Relay: d.relay, ConnSetup: d.setupDone.Sub(d.start),
		Transmission: end.Sub(d.setupDone), ConnUse: d.connUse}
}

// finish gives recipient i its final result.
func (d *delivery) finish(i int, r Result) {
	if d.done[i] {
		return
	}
	r.Addr = d.req.Recipients[i].Addr
	d.results[i], d.done[i] = r, true
}

// fail applies f to recipient i when f is permanent or this is the last
// server; otherwise i stays pending for the next server.
func (d *delivery) fail(i int, f failure, final bool) {
	if f.permanent() || final {
		d.finish(i, f.result(""))
		return
	}
	d.lastFail = &f
}

// failAll applies f to every pending recipient (see fail).
func (d *delivery) failAll(f failure, final bool) {
	for _, i := range d.pending {
		d.fail(i, f, final)
	}
	d.compact()
}

// compact drops finished recipients from pending.
func (d *delivery) compact() {
	keep := d.pending[:0]
	for _, i := range d.pending {
		if !d.done[i] {
			keep = append(keep, i)
		}
	}
	d.pending = keep
}

func (d *delivery) run(ctx context.Context) {
	if err := validateRequest(d.req); err != nil {
		d.failAll(failure{dsn: "4.3.5", reason: "mail system configuration error: " + err.Error(), relay: "none"}, true)
		return
	}
	for _, i := range d.pending {
		if err := checkAddress(d.req.Recipients[i].Addr); err != nil {
			d.finish(i, Result{Status: Bounced, DSN: "5.1.3", Reply: "bad recipient address syntax: " + err.Error(), Relay: "none"})
		}
	}
	d.compact()
	if len(d.pending) == 0 {
		return
	}
	lmtp := d.req.Transport == TransportLMTP
	port := d.c.opts.DefaultPort
	if lmtp {
		port = d.c.opts.LMTPDefaultPort
	}
	dest, err := ParseNexthop(d.req.Transport, d.req.Nexthop, port)
	if err != nil {
		d.failAll(failure{dsn: "4.3.5", reason: "mail system configuration error: " + err.Error(), relay: "none"}, true)
		return
	}
	key := d.req.Transport + ":" + strings.ToLower(strings.TrimSpace(d.req.Nexthop))
	useFallback := !lmtp && len(d.c.opts.FallbackRelays) > 0

	d.tryCached(ctx, key)
	if len(d.pending) > 0 {
		cands, f := d.c.resolve(ctx, dest, d.req.Transport)
		if f != nil {
			d.failAll(*f, !useFallback)
		} else {
			d.tryCandidates(ctx, key, cands, !useFallback)
		}
	}
	if useFallback {
		for n, relay := range d.c.opts.FallbackRelays {
			if len(d.pending) == 0 || ctx.Err() != nil {
				break
			}
			last := n == len(d.c.opts.FallbackRelays)-1
			fd, err := ParseNexthop(TransportSMTP, relay, d.c.opts.DefaultPort)
			if err != nil { // validated in New; keep going if it happens
				continue
			}
			cands, f := d.c.resolve(ctx, fd, TransportSMTP)
			if f != nil {
				d.failAll(*f, last)
				continue
			}
			d.tryCandidates(ctx, key, cands, last)
		}
	}
	// Recipients kept for a next server that never came: defer them with
	// the last reason, as Postfix does.
	if len(d.pending) > 0 {
		f := failure{dsn: "4.4.1", reason: "delivery attempt ended before a server could be reached", relay: d.relay}
		if d.lastFail != nil {
			f = *d.lastFail
		}
		if ctx.Err() != nil && d.lastFail == nil {
			f.reason = "delivery canceled: " + ctx.Err().Error()
		}
		f.dsn = "4" + f.dsn[1:]
		d.failAll(f, true)
	}
}

// tryCached delivers over parked connections to the same nexthop while
// they pass the liveness probe.
func (d *delivery) tryCached(ctx context.Context, key string) {
	if d.c.opts.DisableConnectionCache {
		return
	}
	for len(d.pending) > 0 && ctx.Err() == nil {
		s := d.c.cache.take(key)
		if s == nil {
			return
		}
		unbind := s.bind(ctx)
		if !s.probe(d.c.opts.HeloName, d.c.opts.HeloTimeout) {
			unbind()
			s.close()
			continue
		}
		d.useSession(ctx, key, s, unbind, false)
	}
}

// tryCandidates tries servers in order until no recipient is pending, the
// list ends, or smtp_mx_session_limit sessions were made. lastGroup says no
// other server list follows, so its last server is final.
func (d *delivery) tryCandidates(ctx context.Context, key string, cands []candidate, lastGroup bool) {
	sessions := 0
	for i, cd := range cands {
		if len(d.pending) == 0 {
			return
		}
		if err := ctx.Err(); err != nil {
			return
		}
		lastCand := lastGroup && i == len(cands)-1
		s, unbind, f := d.c.connect(ctx, cd, d.c.opts.TLSLevel)
		if f != nil {
			if f.relay != "none" {
				d.relay = f.relay
			}
			d.failAll(*f, lastCand)
			continue
		}
		sessions++
		limitReached := d.c.opts.MXSessionLimit > 0 && sessions >= d.c.opts.MXSessionLimit
		d.useSession(ctx, key, s, unbind, lastCand || (lastGroup && limitReached))
		if limitReached {
			return
		}
	}
}

// useSession runs one mail transaction on s, then caches or closes it.
func (d *delivery) useSession(ctx context.Context, key string, s *session, unbind func() bool, final bool) {
	d.setupDone = d.c.opts.Now()
	d.relay = s.cd.relay()
	s.uses++
	d.connUse = 0
	if s.uses > 1 {
		d.connUse = s.uses
	}
	reusable := d.transact(s, final)
	d.compact()
	alive := unbind()
	opts := d.c.opts
	switch {
	case !reusable || !alive:
		s.close()
	case len(d.pending) == 0 && !opts.DisableConnectionCache &&
		opts.Now().Sub(s.created) < opts.ConnectionReuseTimeLimit &&
		s.reset(opts.RsetTimeout) &&
		d.c.cache.put(key, s, opts.ConnectionCacheTimeLimit):
		// parked
	default:
		s.quit(opts.QuitTimeout)
	}
}

// transact runs MAIL, RCPT, DATA for the pending recipients on s. It
// returns whether the session can carry another transaction.
func (d *delivery) transact(s *session, final bool) bool {
	req, opts := d.req, d.c.opts
	ext := func(name string) bool { ok, _ := s.client.Extension(name); return ok }

	if limit, ok := s.client.MaxMessageSize(); ok && limit > 0 && req.Size > int64(limit) {
		d.failAll(failure{dsn: "5.3.4", relay: s.cd.relay(), reason: fmt.Sprintf(
			"message size %d exceeds size limit %d of server %s", req.Size, limit, s.cd.namaddr())}, final)
		return true
	}
	if req.SMTPUTF8 && !ext("SMTPUTF8") {
		d.failAll(failure{dsn: "5.6.7", relay: s.cd.relay(), reason: fmt.Sprintf(
			"SMTPUTF8 is required, but was not offered by host %s", s.cd.namaddr())}, final)
		return true
	}
	body, err := req.Body()
	if err != nil {
		d.failAll(failure{dsn: "4.3.0", relay: s.cd.relay(), reason: fmt.Sprintf(
			"local data error while talking to %s", s.cd.namaddr())}, true)
		return true
	}
	defer body.Close()

	var accepted []int
	if ext("PIPELINING") {
		// RFC 2920: MAIL and every RCPT in one go, replies read in order.
		s.client.CommandTimeout = opts.RcptTimeout
		to := make([]string, len(d.pending))
		ropts := make([]*smtp.RcptOptions, len(d.pending))
		for n, i := range d.pending {
			to[n], ropts[n] = req.Recipients[i].Addr, rcptOptions(req.Recipients[i])
		}
		mailErr, rcptErrs, err := s.client.MailRcpts(req.Sender, mailOptions(req, ext), to, ropts)
		switch {
		case err != nil:
			return d.commandFailed(s, err, d.pending, inReplyMail, stageMail, final)
		case mailErr != nil:
			return d.commandFailed(s, mailErr, d.pending, inReplyMail, stageMail, final)
		}
		for n, i := range d.pending {
			rerr := rcptErrs[n]
			if rerr == nil {
				accepted = append(accepted, i)
				continue
			}
			if se := smtpError(rerr); se != nil && se.Code != 421 {
				d.fail(i, saidFailure(se, s.cd.namaddr(), s.cd.relay(), inReplyRcpt), final)
				continue
			}
			rest := append(append([]int(nil), accepted...), d.pending[n:]...)
			return d.commandFailed(s, rerr, rest, inReplyRcpt, stageRcpt, final)
		}
		if len(accepted) == 0 {
			return true
		}
		return d.sendData(s, req, body, accepted, final)
	}

	s.client.CommandTimeout = opts.MailTimeout
	if err := s.client.Mail(req.Sender, mailOptions(req, ext)); err != nil {
		return d.commandFailed(s, err, d.pending, inReplyMail, stageMail, final)
	}

	for n, i := range d.pending {
		s.client.CommandTimeout = opts.RcptTimeout
		err := s.client.Rcpt(req.Recipients[i].Addr, rcptOptions(req.Recipients[i]))
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		if se := smtpError(err); se != nil && se.Code != 421 {
			d.fail(i, saidFailure(se, s.cd.namaddr(), s.cd.relay(), inReplyRcpt), final)
			continue
		}
		// 421 or a broken connection: everything not yet answered fails.
		rest := append(append([]int(nil), accepted...), d.pending[n:]...)
		return d.commandFailed(s, err, rest, inReplyRcpt, stageRcpt, final)
	}
	if len(accepted) == 0 {
		return true
	}
	return d.sendData(s, req, body, accepted, final)
}

// sendData sends the message to the accepted recipients and records the
// outcome. It returns whether s is still usable.
func (d *delivery) sendData(s *session, req *Request, body io.Reader, accepted []int, final bool) bool {
	opts := &d.c.opts
	s.client.CommandTimeout = opts.DataInitTimeout
	w, err := s.client.Data()
	if err != nil {
		return d.commandFailed(s, err, accepted, inReplyData, stageData, final)
	}
	s.g.setXferTimeout(opts.DataXferTimeout)
	src := &errReader{r: body}
	_, err = io.Copy(w, src)
	s.g.setXferTimeout(0)
	if err != nil {
		f := ioFailure(err, s.cd.namaddr(), s.cd.relay(), stageBody)
		if src.err != nil {
			// Never send the final dot after a partial body: drop the
			// connection so the server discards the transaction.
			f = failure{dsn: "4.3.0", relay: s.cd.relay(), reason: fmt.Sprintf("local data error while talking to %s", s.cd.namaddr())}
			final = true
		}
		for _, i := range accepted {
			d.fail(i, f, final)
		}
		return false
	}

	s.client.SubmissionTimeout = opts.DataDoneTimeout
	if s.lmtp {
		return d.finishLMTP(s, w, accepted)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return d.commandFailed(s, err, accepted, inReplyDataEnd, stageDataEnd, final)
	}
	reply := "250 " + strings.ReplaceAll(resp.StatusText, "\n", " 250 ")
	for _, i := range accepted {
		d.finish(i, Result{Status: Sent, DSN: successDSN(resp.StatusText), Reply: reply, Relay: s.cd.relay()})
	}
	return true
}

// commandFailed handles an error from a command answered for all of rcpts:
// an SMTP reply fails them with the server's words; anything else is a
// broken or timed-out connection. It returns whether s is still usable.
func (d *delivery) commandFailed(s *session, err error, rcpts []int, inReply, stage string, final bool) bool {
	var f failure
	se := smtpError(err)
	if se != nil {
		f = saidFailure(se, s.cd.namaddr(), s.cd.relay(), inReply)
	} else {
		f = ioFailure(err, s.cd.namaddr(), s.cd.relay(), stage)
	}
	for _, i := range rcpts {
		d.fail(i, f, final)
	}
	return se != nil && se.Code != 421
}

// errReader remembers a read error so that it can be told from a write
// error after io.Copy.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.err = err
	}
	return n, err
}

// successDSN takes the enhanced status code from a 2xx reply text.
func successDSN(text string) string {
	code, _, _ := strings.Cut(text, " ")
	p := strings.Split(code, ".")
	if len(p) == 3 && p[0] == "2" && isDigits(p[1]) && isDigits(p[2]) {
		return code
	}
	return "2.0.0"
}

func isDigits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
