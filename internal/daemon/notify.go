package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/actors"
	"github.com/yubin-mta/yubin/internal/dsn"
	"github.com/yubin-mta/yubin/queue"
)

// notifier turns delivery results into RFC 3464 notices and queues them
// from the null sender, like Postfix's bounce(8) (actors.Notifier).
type notifier struct{ n *Node }

var noticeKinds = map[string]dsn.Kind{
	actors.NoticeFailure: dsn.Failure,
	actors.NoticeDelay:   dsn.Delay,
	actors.NoticeSuccess: dsn.Success,
}

func (b *notifier) Bounce(ctx context.Context, msg queue.Message, rcpts []queue.Recipient, kind string, original func() (io.ReadCloser, error)) (string, error) {
	n := b.n
	k, ok := noticeKinds[kind]
	if !ok {
		return "", fmt.Errorf("unknown notice kind %q", kind)
	}
	if msg.Sender == "" {
		return "", nil // never a notice about a notice
	}
	id := n.NewID()
	now := time.Now()
	note := &dsn.Notification{
		ReportingMTA: n.cfg.Get("myhostname"),
		QueueID:      msg.ID,
		NewQueueID:   id,
		Sender:       msg.Sender,
		ENVID:        msg.ENVID,
		RET:          msg.RET,
		Arrival:      msg.Arrival,
		Kind:         k,
		Original:     original,
		Now:          now,
		Postmaster:   "postmaster@" + n.cfg.Get("myhostname"),
	}
	note.DelayWarningTime = durationParam(n.cfg, "delay_warning_time")
	note.MaximalQueueLifetime = durationParam(n.cfg, "maximal_queue_lifetime")
	for _, r := range rcpts {
		st := dsn.RcptStatus{Addr: r.Addr, ORCPT: r.ORCPT, Status: r.DSN, Reason: r.Reason}
		if r.Reason != "" {
			st.Diagnostic = diagnostic(r.Reason)
			st.RemoteMTA = remoteMTA(r.Reason)
		}
		if st.ORCPT == "" && r.OrigAddr != "" {
			st.ORCPT = "rfc822;" + r.OrigAddr
		}
		note.Recipients = append(note.Recipients, st)
	}
	body, err := dsn.Compose(note)
	if err != nil {
		return "", fmt.Errorf("compose notice: %w", err)
	}
	body = bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
	m := &queue.Message{
		ID: id, Sender: "", Arrival: now, Origin: "bounce", Protocol: "LOCAL",
		Recipients: []queue.Recipient{{Addr: msg.Sender}},
	}
	n.log.Printf("cleanup", "%s: message-id=<%s.%s@%s>", id, now.UTC().Format("20060102150405"), id, n.cfg.Get("myhostname"))
	if err := n.Submit(ctx, m, body); err != nil {
		return "", err
	}
	return id, nil
}

// diagnostic extracts "smtp; 550 5.1.1 ..." from a Postfix reason such as
// "host mx[1.2.3.4] said: 550 5.1.1 ... (in reply to RCPT TO command)".
func diagnostic(reason string) string {
	if _, said, ok := strings.Cut(reason, " said: "); ok {
		if i := strings.LastIndex(said, " (in reply to "); i > 0 {
			said = said[:i]
		}
		return "smtp; " + said
	}
	return "X-Postfix; " + reason
}

func remoteMTA(reason string) string {
	host, ok := strings.CutPrefix(reason, "host ")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(host, "[ "); i > 0 {
		return "dns; " + host[:i]
	}
	return ""
}
