package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/yubin-mta/yubin/internal/pickup"
	"github.com/yubin-mta/yubin/queue"
)

// commitTimeout bounds one commit: a cluster that cannot commit within it
// has no usable quorum, and the SMTP client is better told 4xx to retry.
const commitTimeout = 30 * time.Second

// apply commits one queue command through Raft.
func (n *Node) apply(ctx context.Context, c *queue.Command) (queue.ApplyResult, error) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	start := time.Now()
	res, err := n.raft.Apply(ctx, c)
	if n.ops.stats != nil {
		n.ops.stats.ObserveCommit(time.Since(start), err)
	}
	return res, err
}

// NewID returns a fresh queue ID (inbound.Queue).
func (n *Node) NewID() string { return n.ids.Next() }

// Submit commits a message to the queue and returns once it is on a majority
// of the cluster's disks (inbound.Queue). Recipients are expanded through
// virtual_alias_maps and alias_maps first, as Postfix's cleanup does.
func (n *Node) Submit(ctx context.Context, m *queue.Message, body []byte) error {
	if m.Arrival.IsZero() {
		m.Arrival = time.Now()
	}
	rcpts, err := n.expandRecipients(m.Recipients)
	if err != nil {
		return err
	}
	m.Recipients = rcpts
	// The scheduler logs the qmgr "from=<...>, size=N, nrcpt=N" line when
	// it takes the message, as Postfix's qmgr does.
	_, err = n.apply(ctx, &queue.Command{Type: queue.CmdEnqueue, Message: m, Body: body, Now: m.Arrival})
	return err
}

// submitLocal queues a message from sendmail or the maildrop, logging it
// as Postfix's pickup and cleanup do.
func (n *Node) submitLocal(ctx context.Context, env pickup.Envelope, raw []byte, _ string) (string, error) {
	if limit := n.settings.messageSizeLimit; limit > 0 && int64(len(raw)) > limit {
		return "", fmt.Errorf("message file too big")
	}
	id := n.NewID()
	now := time.Now()
	p, err := pickup.Prepare(env, raw, n.settings.pickupDefaults, id, now)
	if err != nil {
		return "", err
	}
	m := &queue.Message{ID: id, Sender: p.Sender, Arrival: now, MessageID: p.MessageID, Protocol: "LOCAL", Origin: "pickup"}
	for _, r := range p.Recipients {
		m.Recipients = append(m.Recipients, queue.Recipient{Addr: n.canonical(r)})
	}
	n.log.Printf("pickup", "%s: uid=%d from=<%s>", id, env.UID, p.Sender)
	n.log.Printf("cleanup", "%s: message-id=<%s>", id, p.MessageID)
	if err := n.Submit(ctx, m, p.Body); err != nil {
		return "", err
	}
	return id, nil
}

// pickupInterval is how often the maildrop is looked at.
const pickupInterval = time.Second

// startPickup makes the maildrop (writable by everyone, listable by no one,
// like Postfix's) and submits what sendmail leaves there, at once and then
// every pickupInterval, like Postfix's pickup(8).
func (n *Node) startPickup() error {
	dir := n.settings.maildropDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("maildrop: %w", err)
	}
	if err := os.Chmod(dir, os.ModeSticky|0o733); err != nil {
		return fmt.Errorf("maildrop: %w", err)
	}
	n.stopPickup, n.pickupDone = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	n.pickupMaildrop(ctx)
	go func() {
		defer close(n.pickupDone)
		defer cancel()
		t := time.NewTicker(pickupInterval)
		defer t.Stop()
		for {
			select {
			case <-n.stopPickup:
				return
			case <-t.C:
				n.pickupMaildrop(ctx)
			}
		}
	}()
	return nil
}

// pickupMaildrop submits every message waiting in the maildrop.
func (n *Node) pickupMaildrop(ctx context.Context) {
	files, err := pickup.Pending(n.settings.maildropDir)
	if err != nil {
		n.log.Printf("pickup", "warning: %v", err)
		return
	}
	for _, f := range files {
		env, raw, err := pickup.Read(f)
		if err != nil {
			n.log.Printf("pickup", "warning: %v", err)
			continue
		}
		if _, err := n.submitLocal(ctx, env, raw, "pickup"); err != nil {
			n.log.Printf("pickup", "warning: %s: %v", f, err)
			continue
		}
		removeFile(f)
	}
}
