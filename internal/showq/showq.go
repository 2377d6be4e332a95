// Package showq formats the queue the way Postfix's showq(8) and postqueue(1)
// do: the Sendmail-compatible mailq listing (postqueue -p) and JSON lines
// (postqueue -j), so scripts written for Postfix keep working.
package showq

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

// statusMark is the character after the queue ID: '*' active, '!' hold.
func statusMark(s queue.State) byte {
	switch s {
	case queue.Active:
		return '*'
	case queue.Hold:
		return '!'
	}
	return ' '
}

// Options changes the listing.
type Options struct {
	// ShowNode adds the node holding an active delivery, "(delivering on mx2)".
	ShowNode bool
	Location *time.Location // arrival times; nil = local time
}

// Mailq writes the listing of postqueue -p.
func Mailq(w io.Writer, msgs []queue.Message, opt Options) error {
	bw := bufio.NewWriter(w)
	if len(msgs) == 0 {
		bw.WriteString("Mail queue is empty\n")
		return bw.Flush()
	}
	loc := opt.Location
	if loc == nil {
		loc = time.Local
	}
	var total int64
	bw.WriteString("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n")
	for _, m := range msgs {
		total += m.Size
		sender := m.Sender
		if sender == "" {
			sender = "MAILER-DAEMON"
		}
		// asctime() is 24 characters; Postfix prints the first 20.
		arrival := m.Arrival.In(loc).Format("Mon Jan _2 15:04:05 2006")[:20]
		fmt.Fprintf(bw, "%-10s%c%8d %s %s\n", m.ID, statusMark(m.State), m.Size, arrival, sender)
		if opt.ShowNode && m.State == queue.Active && m.Node != "" {
			fmt.Fprintf(bw, "(delivering on %s)\n", m.Node)
		}
		// Recipients are grouped under the reason of their last deferral,
		// each distinct reason printed once, as Postfix does.
		printed := map[string]bool{}
		for _, r := range m.Recipients {
			if r.Status.Final() {
				continue
			}
			reason := ""
			if r.Status == queue.RcptDeferred {
				reason = r.Reason
			}
			if reason != "" && !printed[reason] {
				fmt.Fprintf(bw, "(%s)\n", reason)
				printed[reason] = true
			}
			fmt.Fprintf(bw, "%41s%s\n", "", r.Addr)
		}
		bw.WriteString("\n")
	}
	plural := "s"
	if len(msgs) == 1 {
		plural = ""
	}
	fmt.Fprintf(bw, "-- %d Kbytes in %d Request%s.\n", total/1024, len(msgs), plural)
	return bw.Flush()
}

type jsonRecipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason,omitempty"`
}

type jsonMessage struct {
	QueueName     string          `json:"queue_name"`
	QueueID       string          `json:"queue_id"`
	ArrivalTime   int64           `json:"arrival_time"`
	MessageSize   int64           `json:"message_size"`
	ForcedExpire  bool            `json:"forced_expire"`
	Sender        string          `json:"sender"`
	Recipients    []jsonRecipient `json:"recipients"`
	Node          string          `json:"node,omitempty"`
	NextAttemptAt int64           `json:"next_attempt,omitempty"`
}

// JSON writes one JSON object per message, like postqueue -j (Postfix 3.1+).
func JSON(w io.Writer, msgs []queue.Message) error {
	enc := json.NewEncoder(w)
	for _, m := range msgs {
		jm := jsonMessage{
			QueueName:   string(m.State),
			QueueID:     m.ID,
			ArrivalTime: m.Arrival.Unix(),
			MessageSize: m.Size,
			Sender:      m.Sender,
			Node:        m.Node,
			Recipients:  []jsonRecipient{},
		}
		if !m.NextAttempt.IsZero() && m.State == queue.Deferred {
			jm.NextAttemptAt = m.NextAttempt.Unix()
		}
		for _, r := range m.Recipients {
			if r.Status.Final() {
				continue
			}
			jr := jsonRecipient{Address: r.Addr}
			if r.Status == queue.RcptDeferred {
				jr.DelayReason = r.Reason
			}
			jm.Recipients = append(jm.Recipients, jr)
		}
		if err := enc.Encode(&jm); err != nil {
			return err
		}
	}
	return nil
}
