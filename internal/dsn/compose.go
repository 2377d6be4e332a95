package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

// DefaultBounceSizeLimit is bounce_size_limit: a larger original is
// returned as headers only.
const DefaultBounceSizeLimit = 50000

// RcptStatus is the outcome for one recipient.
type RcptStatus struct {
	// Addr is the final recipient address.
	Addr string
	// ORCPT is the original recipient: the RCPT TO ORCPT= parameter
	// ("rfc822;joe@example.com") or a plain address.
	ORCPT string
	// Action is failed, delayed, delivered, relayed or expanded; empty
	// takes the notification's kind.
	Action string
	// Status is the enhanced status code, e.g. "5.1.1"; empty means
	// 5.0.0, 4.0.0 or 2.0.0 by action.
	Status string
	// RemoteMTA is the remote host ("mx.example.com" or "dns; mx...").
	RemoteMTA string
	// Diagnostic is "type; text" (e.g. "smtp; 550 5.1.1 no such user"); a
	// value without a type is reported as "X-Postfix; text".
	Diagnostic string
	// Reason is the human-readable explanation for the first part, e.g.
	// "host mx[192.0.2.1] said: 550 ... (in reply to RCPT TO command)";
	// empty uses the diagnostic text.
	Reason         string
	LastAttempt    time.Time
	WillRetryUntil time.Time
}

// Notification is everything a DSN reports.
type Notification struct {
	// ReportingMTA is myhostname.
	ReportingMTA string
	// QueueID is the original message's queue ID; NewQueueID, when known,
	// is the notification's own and makes the Message-ID.
	QueueID, NewQueueID string
	// Sender is the original envelope sender: the notification's
	// recipient. It must not be empty.
	Sender string
	// ENVID and RET are the MAIL FROM ENVID= and RET= (FULL or HDRS).
	ENVID, RET string
	Arrival    time.Time
	Kind       Kind
	Recipients []RcptStatus
	// Original opens the original message; nil reports it unavailable.
	Original func() (io.ReadCloser, error)
	// Now is the time of the report; zero means time.Now().
	Now time.Time
	// Postmaster is whom the text tells the reader to write to (default
	// "postmaster").
	Postmaster string
	// DelayWarningTime and MaximalQueueLifetime fill the delay text
	// ("... for more than N hour(s)", "... until it is N day(s) old");
	// zero derives them from Arrival, Now and WillRetryUntil.
	DelayWarningTime, MaximalQueueLifetime time.Duration
	// BounceSizeLimit is bounce_size_limit (0 means 50000; negative
	// means no limit).
	BounceSizeLimit int64
}

var (
	statusRE = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)
	typedRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*;`)
)

var validActions = map[string]bool{"failed": true, "delayed": true, "delivered": true, "relayed": true, "expanded": true}

func validate(n *Notification) error {
	if n == nil {
		return errors.New("nil notification")
	}
	if strings.TrimSpace(n.Sender) == "" || n.Sender == "<>" {
		return errors.New("no notification to the null sender")
	}
	if n.ReportingMTA == "" {
		return errors.New("reporting MTA (myhostname) is empty")
	}
	if n.Kind != Failure && n.Kind != Delay && n.Kind != Success {
		return fmt.Errorf("unknown notification kind %d", int(n.Kind))
	}
	if len(n.Recipients) == 0 {
		return errors.New("notification without recipients")
	}
	if r := strings.ToUpper(n.RET); r != "" && r != "FULL" && r != "HDRS" {
		return fmt.Errorf("bad RET value %q", n.RET)
	}
	fields := map[string]string{"reporting MTA": n.ReportingMTA, "queue ID": n.QueueID, "new queue ID": n.NewQueueID,
		"sender": n.Sender, "ENVID": n.ENVID, "postmaster": n.Postmaster}
	for i, r := range n.Recipients {
		if r.Addr == "" {
			return fmt.Errorf("recipient %d: empty address", i)
		}
		if r.Action != "" && !validActions[r.Action] {
			return fmt.Errorf("recipient %s: bad action %q", r.Addr, r.Action)
		}
		if r.Status != "" && !statusRE.MatchString(r.Status) {
			return fmt.Errorf("recipient %s: bad status %q", r.Addr, r.Status)
		}
		for k, v := range map[string]string{"address": r.Addr, "ORCPT": r.ORCPT, "remote MTA": r.RemoteMTA,
			"diagnostic": r.Diagnostic, "reason": r.Reason} {
			fields[fmt.Sprintf("recipient %d %s", i, k)] = v
		}
	}
	for k, v := range fields {
		for i := 0; i < len(v); i++ {
			if (v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f {
				return fmt.Errorf("%s contains control character %#x", k, v[i])
			}
		}
	}
	if strings.TrimSpace(n.Sender) != n.Sender {
		return fmt.Errorf("sender %q has surrounding white space", n.Sender)
	}
	return nil
}

// Compose builds the notification message, headers and body, with LF
// line endings.
func Compose(n *Notification) ([]byte, error) {
	if err := validate(n); err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}
	now := n.Now
	if now.IsZero() {
		now = time.Now()
	}
	rcpts := make([]RcptStatus, len(n.Recipients))
	for i, r := range n.Recipients {
		if r.Action == "" {
			r.Action = n.Kind.defaultAction()
		}
		if r.Status == "" {
			r.Status = map[string]string{"failed": "5.0.0", "delayed": "4.0.0"}[r.Action]
			if r.Status == "" {
				r.Status = "2.0.0"
			}
		}
		rcpts[i] = r
	}

	headersOnly := n.Kind != Failure
	switch strings.ToUpper(n.RET) {
	case "HDRS":
		headersOnly = true
	case "FULL":
		headersOnly = n.Kind == Delay // Postfix returns headers only with a delay warning
	}
	original, origMsgID, eightBit, err := readOriginal(n, headersOnly)
	if err != nil {
		return nil, fmt.Errorf("compose DSN: %w", err)
	}
	if original.truncated {
		headersOnly = true
	}

	id := n.NewQueueID
	if id == "" {
		id = n.QueueID
	}
	boundary := fmt.Sprintf("%s.%d/%s", id, now.Unix(), n.ReportingMTA)
	for i := 1; bytes.Contains(original.data, []byte("--"+boundary)); i++ {
		boundary = fmt.Sprintf("%s.%d.%d/%s", id, now.Unix(), i, n.ReportingMTA)
	}

	var b bytes.Buffer
	hdr := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	hdr("From: MAILER-DAEMON@%s (Mail Delivery System)", n.ReportingMTA)
	hdr("Subject: %s", subject(n.Kind, rcpts))
	hdr("To: %s", mailbox.QuoteLocal(n.Sender))
	if origMsgID != "" {
		hdr("References: %s", origMsgID)
		hdr("In-Reply-To: %s", origMsgID)
	}
	hdr("Auto-Submitted: auto-replied")
	hdr("MIME-Version: 1.0")
	hdr("Content-Type: multipart/report; report-type=delivery-status;")
	hdr("\tboundary=%q", boundary)
	cte := "7bit"
	if eightBit {
		cte = "8bit"
	}
	hdr("Content-Transfer-Encoding: %s", cte)
	hdr("Message-Id: <%s.%s@%s>", now.UTC().Format("20060102150405"), id, n.ReportingMTA)
	hdr("Date: %s", mailDate(now))
	hdr("")
	hdr("This is a MIME-encapsulated message.")
	hdr("")

	// Part 1: the human-readable notification.
	hdr("--%s", boundary)
	hdr("Content-Description: Notification")
	hdr("Content-Type: text/plain; charset=us-ascii")
	hdr("")
	b.WriteString(templateText(n, now, rcpts))
	for _, r := range rcpts {
		hdr("")
		line := fmt.Sprintf("<%s>: %s", r.Addr, reason(r))
		if orig := orcptAddress(r.ORCPT); orig != "" && !strings.EqualFold(orig, r.Addr) {
			line = fmt.Sprintf("<%s> (expanded from <%s>): %s", r.Addr, orig, reason(r))
		}
		for _, l := range wrap(line, 79, 4) {
			hdr("%s", l)
		}
	}

	// Part 2: message/delivery-status.
	hdr("")
	hdr("--%s", boundary)
	hdr("Content-Description: Delivery report")
	hdr("Content-Type: message/delivery-status")
	hdr("")
	hdr("Reporting-MTA: dns; %s", n.ReportingMTA)
	if n.ENVID != "" {
		hdr("Original-Envelope-Id: %s", n.ENVID)
	}
	if n.QueueID != "" {
		hdr("X-Postfix-Queue-ID: %s", n.QueueID)
	}
	hdr("X-Postfix-Sender: rfc822; %s", n.Sender)
	if !n.Arrival.IsZero() {
		hdr("Arrival-Date: %s", mailDate(n.Arrival))
	}
	for _, r := range rcpts {
		hdr("")
		hdr("Final-Recipient: rfc822; %s", r.Addr)
		if r.ORCPT != "" {
			hdr("Original-Recipient: %s", typed(r.ORCPT, "rfc822"))
		}
		hdr("Action: %s", r.Action)
		hdr("Status: %s", r.Status)
		if r.RemoteMTA != "" {
			for _, l := range wrap("Remote-MTA: "+typed(r.RemoteMTA, "dns"), 79, 4) {
				hdr("%s", l)
			}
		}
		diag := r.Diagnostic
		if diag == "" {
			diag = r.Reason
		}
		if diag != "" {
			for _, l := range wrap("Diagnostic-Code: "+typed(diag, "X-Postfix"), 79, 4) {
				hdr("%s", l)
			}
		}
		if !r.LastAttempt.IsZero() {
			hdr("Last-Attempt-Date: %s", mailDate(r.LastAttempt))
		}
		if r.Action == "delayed" && !r.WillRetryUntil.IsZero() {
			hdr("Will-Retry-Until: %s", mailDate(r.WillRetryUntil))
		}
	}

	// Part 3: the original message or its headers.
	hdr("")
	hdr("--%s", boundary)
	desc := "Message"
	if headersOnly {
		desc = "Message Headers"
	}
	if n.Kind != Success {
		desc = "Undelivered " + desc
	}
	hdr("Content-Description: %s", desc)
	if headersOnly {
		hdr("Content-Type: text/rfc822-headers")
	} else {
		hdr("Content-Type: message/rfc822")
	}
	if eightBit {
		hdr("Content-Transfer-Encoding: 8bit")
	}
	hdr("")
	if original.data == nil {
		hdr("\t--- Undelivered message unavailable ---")
	} else {
		hdr("Return-Path: <%s>", n.Sender)
		b.Write(original.data)
	}
	hdr("")
	hdr("--%s--", boundary)
	return b.Bytes(), nil
}

// subject is Postfix's template subject, or the generic report subject
// when the recipients' actions are mixed.
func subject(k Kind, rcpts []RcptStatus) string {
	group := func(action string) string {
		switch action {
		case "failed":
			return "failed"
		case "delayed":
			return "delayed"
		}
		return "ok"
	}
	first := group(rcpts[0].Action)
	for _, r := range rcpts[1:] {
		if group(r.Action) != first {
			return "Mail Delivery Status Report"
		}
	}
	switch first {
	case "failed":
		return "Undelivered Mail Returned to Sender"
	case "delayed":
		return "Delayed Mail (still being retried)"
	}
	if k == Success {
		return "Successful Mail Delivery Report"
	}
	return "Mail Delivery Status Report"
}

// templateText is the body of Postfix's failure, delay or success
// template with $myhostname and the delay numbers filled in.
func templateText(n *Notification, now time.Time, rcpts []RcptStatus) string {
	pm := n.Postmaster
	if pm == "" {
		pm = "postmaster"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at host %s.\n\n", n.ReportingMTA)
	switch n.Kind {
	case Failure:
		b.WriteString("I'm sorry to have to inform you that your message could not\n" +
			"be delivered to one or more recipients. It's attached below.\n\n")
	case Delay:
		b.WriteString("####################################################################\n" +
			"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n" +
			"####################################################################\n\n")
		hours, days := delayNumbers(n, now, rcpts)
		fmt.Fprintf(&b, "Your message could not be delivered for more than %d hour(s).\n", hours)
		fmt.Fprintf(&b, "It will be retried until it is %d day(s) old.\n\n", days)
	case Success:
		b.WriteString("Your message was successfully delivered to the destination(s)\n" +
			"listed below. If the message was delivered to mailbox you will\n" +
			"receive no further notifications. Otherwise you may still receive\n" +
			"notifications of mail delivery errors from other systems.\n\n" +
			"                   The mail system\n")
		return b.String()
	}
	fmt.Fprintf(&b, "For further assistance, please send mail to %s.\n\n", pm)
	b.WriteString("If you do so, please include this problem report. You can\n" +
		"delete your own text from the attached returned message.\n\n" +
		"                   The mail system\n")
	return b.String()
}

func delayNumbers(n *Notification, now time.Time, rcpts []RcptStatus) (hours, days int) {
	if n.DelayWarningTime > 0 {
		hours = int(n.DelayWarningTime / time.Hour)
	} else if !n.Arrival.IsZero() && now.After(n.Arrival) {
		hours = int(now.Sub(n.Arrival) / time.Hour)
	}
	days = 5 // maximal_queue_lifetime default
	if n.MaximalQueueLifetime > 0 {
		days = int(n.MaximalQueueLifetime / (24 * time.Hour))
	} else if !n.Arrival.IsZero() {
		for _, r := range rcpts {
			if !r.WillRetryUntil.IsZero() && r.WillRetryUntil.After(n.Arrival) {
				days = int((r.WillRetryUntil.Sub(n.Arrival) + 12*time.Hour) / (24 * time.Hour))
				break
			}
		}
	}
	return hours, days
}

// mailDate formats t like Postfix's mail_date(): "Tue,  2 Jan 2024
// 10:00:00 +0900 (JST)".
func mailDate(t time.Time) string {
	return t.Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)")
}

// typed returns v unchanged when it already starts with "type;", else
// "deftype; v".
func typed(v, deftype string) string {
	if typedRE.MatchString(v) {
		return v
	}
	return deftype + "; " + v
}

// orcptAddress is the address part of an ORCPT value.
func orcptAddress(v string) string {
	if typedRE.MatchString(v) {
		_, addr, _ := strings.Cut(v, ";")
		return strings.TrimSpace(addr)
	}
	return strings.TrimSpace(v)
}

func reason(r RcptStatus) string {
	if r.Reason != "" {
		return r.Reason
	}
	if typedRE.MatchString(r.Diagnostic) {
		_, text, _ := strings.Cut(r.Diagnostic, ";")
		return strings.TrimSpace(text)
	}
	if r.Diagnostic != "" {
		return r.Diagnostic
	}
	return r.Action
}

// wrap breaks s at blanks into lines of at most width characters (a word
// longer than that stays whole); continuation lines are indented, as
// Postfix's line_wrap() does for bounce text.
func wrap(s string, width, indent int) []string {
	var lines []string
	prefix := ""
	for len(prefix)+len(s) > width {
		cut := strings.LastIndexByte(s[:width-len(prefix)+1], ' ')
		if cut <= 0 {
			cut = strings.IndexByte(s, ' ')
			if cut < 0 {
				break
			}
		}
		lines = append(lines, prefix+s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
		prefix = strings.Repeat(" ", indent)
	}
	return append(lines, prefix+s)
}

type originalText struct {
	data      []byte // nil when unavailable
	truncated bool   // over bounce_size_limit: headers only
}

// readOriginal reads the original message (or its header section), with
// LF line endings, and returns its Message-ID and whether it has 8-bit
// bytes.
func readOriginal(n *Notification, headersOnly bool) (originalText, string, bool, error) {
	if n.Original == nil {
		return originalText{}, "", false, nil
	}
	rc, err := n.Original()
	if err != nil {
		return originalText{}, "", false, fmt.Errorf("open original message: %w", err)
	}
	defer rc.Close()
	limit := n.BounceSizeLimit
	if limit == 0 {
		limit = DefaultBounceSizeLimit
	}
	var out bytes.Buffer
	var msgID string
	eightBit := false
	inHeaders := true
	truncated := false
	var total int64
	r := bufio.NewReader(rc)
	for {
		line, err := r.ReadString('\n')
		if line == "" && err != nil {
			if err == io.EOF {
				break
			}
			return originalText{}, "", false, fmt.Errorf("read original message: %w", err)
		}
		total += int64(len(line))
		text := strings.TrimRight(line, "\r\n")
		if inHeaders && text == "" {
			inHeaders = false
			if headersOnly {
				break
			}
		}
		if !inHeaders && limit > 0 && total > limit {
			truncated = true
			break
		}
		if inHeaders && msgID == "" {
			if name, v, ok := strings.Cut(text, ":"); ok && strings.EqualFold(name, "Message-Id") {
				msgID = strings.TrimSpace(v)
			}
		}
		for i := 0; i < len(text); i++ {
			if text[i] >= 0x80 {
				eightBit = true
				break
			}
		}
		out.WriteString(text)
		out.WriteByte('\n')
		if err == io.EOF {
			break
		}
	}
	data := out.Bytes()
	if truncated {
		// Keep the header section only, so the MIME structure stays whole.
		if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
			data = data[:i+1]
		}
	} else if data == nil {
		data = []byte{}
	}
	return originalText{data: data, truncated: truncated}, msgID, eightBit, nil
}
