package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	gosasl "github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"

	"github.com/yubin-mta/yubin/internal/sasl"
	"github.com/yubin-mta/yubin/queue"
)

// session adapts go-smtp's Session calls to the connection state. go-smtp
// calls it only for commands the command hook let through.
type session struct{ st *connState }

func (s *session) Reset()        { s.st.endTransaction() }
func (s *session) Logout() error { return nil }

func (s *session) Mail(_ string, _ *smtp.MailOptions) error { return s.st.startMail() }

func (s *session) Rcpt(_ string, opts *smtp.RcptOptions) error { return s.st.addRcpt(opts) }

func (s *session) AuthMechanisms() []string {
	if s.st.srv.s.SASL == nil {
		return nil
	}
	return sasl.Mechanisms
}

func (s *session) Auth(mech string) (gosasl.Server, error) { return s.st.newMechanism(mech) }

// Data reads the message, runs cleanup and submits it. The reply is
// "250 2.0.0 Ok: queued as ID" only after Queue.Submit returned nil.
func (s *session) Data(r io.Reader) error {
	st := s.st
	srv := st.srv
	tx := st.tx
	if tx == nil || tx.id == "" {
		return reply(503, "5.5.1", "Error: need RCPT command")
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		var se *smtp.SMTPError
		switch {
		case errors.Is(err, smtp.ErrDataTooLarge):
			e := reply(552, "5.3.4", "Message size exceeds fixed limit")
			st.logReject("END-OF-MESSAGE", e, "")
			return e
		case errors.Is(err, smtp.ErrTooLongLine):
			e := reply(500, "5.5.2", "Error: text line too long (RFC 5321 limit is 1000 octets)")
			st.logReject("DATA", e, "")
			return e
		case errors.As(err, &se):
			return se // a line-ending violation: go-smtp replies and closes
		}
		return fmt.Errorf("read message: %w", err)
	}
	msg, err := st.cleanup(buf.Bytes())
	if err != nil {
		var e *smtp.SMTPError
		if errors.As(err, &e) {
			st.logReject("END-OF-MESSAGE", e, "")
		}
		return err
	}
	m := st.queueMessage(msg)
	if tx.discard {
		// DISCARD: claim success, keep nothing (Postfix does the same).
		return reply(250, "2.0.0", "Ok: queued as "+tx.id)
	}
	ctx, cancel := context.WithTimeout(srv.base, srv.s.Timeout)
	defer cancel()
	if err := srv.q.Submit(ctx, m, msg.body); err != nil {
		srv.logf("warning: %s: queue file write error: %v", tx.id, err)
		return reply(451, "4.3.0", "Error: queue file write error")
	}
	if srv.s.Queued != nil {
		srv.s.Queued(m)
	} else {
		srv.s.Log.Printf("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", m.ID, m.Sender, m.Size, len(m.Recipients))
	}
	st.errors, st.junk = 0, 0 // Postfix forgives clients that deliver mail
	return reply(250, "2.0.0", "Ok: queued as "+tx.id)
}

// queueMessage builds the queue entry for the finished transaction.
func (st *connState) queueMessage(msg *cleanMessage) *queue.Message {
	tx := st.tx
	rcpts := tx.rcpts
	if tx.redirect != "" {
		rcpts = []queue.Recipient{{Addr: tx.redirect}}
	}
	m := &queue.Message{
		ID:         tx.id,
		Sender:     tx.sender.String(),
		Recipients: rcpts,
		Arrival:    st.srv.s.Now(),
		Size:       int64(len(msg.body)),
		ClientName: st.client.Name,
		ClientAddr: st.client.Addr.String(),
		Helo:       st.helo,
		Protocol:   st.receivedProto(),
		MessageID:  msg.messageID,
		ENVID:      tx.envid,
		RET:        tx.ret,
		BodyType:   tx.body,
		SMTPUTF8:   tx.smtputf8,
		Origin:     "smtpd",
		State:      queue.Incoming,
		Hold:       tx.hold,
	}
	if tx.hold {
		m.State = queue.Hold
	}
	return m
}
