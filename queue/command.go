package queue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CommandType tags a log entry. Types are only ever added, never renumbered.
// A type with IgnoreIfUnknown set may be skipped by an older node that does
// not know it, which allows rolling upgrades.
type CommandType uint8

const (
	CmdEnqueue  CommandType = 1 // a new message with its body
	CmdDelete   CommandType = 2 // postsuper -d
	CmdHold     CommandType = 3 // postsuper -h
	CmdRelease  CommandType = 4 // postsuper -H
	CmdRequeue  CommandType = 5 // postsuper -r
	CmdFlush    CommandType = 6 // postqueue -f / -s / -i: deferred mail due now
	CmdActivate CommandType = 7 // the scheduler moves a message into the active queue
	CmdResult   CommandType = 8 // delivery results for some recipients of one message
	CmdDefer    CommandType = 9 // an active message goes back to deferred (or incoming)

	// IgnoreIfUnknown marks a command an older FSM may skip.
	IgnoreIfUnknown CommandType = 0x80
)

// commandVersion is the envelope format version, the first byte of an entry.
const commandVersion = 1

// maxMetaLen bounds the metadata part of an entry; bodies are bounded by
// message_size_limit before they get here.
const maxMetaLen = 16 << 20

// Command is one queue change. Times are chosen by the proposer, never by
// Apply, so every node computes the same state.
type Command struct {
	Type CommandType `json:"-"`

	Message *Message `json:"msg,omitempty"` // CmdEnqueue
	Body    []byte   `json:"-"`             // CmdEnqueue

	IDs   []string  `json:"ids,omitempty"`  // Delete, Hold, Release, Requeue, Flush, Activate
	Site  string    `json:"site,omitempty"` // Flush: only messages with a recipient in this domain
	All   bool      `json:"all,omitempty"`  // Delete/Hold/Release/Requeue/Flush: every message (in Queue)
	Queue State     `json:"queue,omitempty"`
	Node  string    `json:"node,omitempty"` // Activate: the node delivering
	Now   time.Time `json:"now"`

	ID      string       `json:"id,omitempty"`      // Result, Defer
	Results []RcptResult `json:"results,omitempty"` // Result
	// NextAttempt is when a deferred message is due again (Result, Defer).
	NextAttempt time.Time `json:"next,omitempty"`
	Reason      string    `json:"reason,omitempty"`
}

// RcptResult is the outcome of one delivery attempt for one recipient.
type RcptResult struct {
	Index  int        `json:"i"`
	Status RcptStatus `json:"status"`
	DSN    string     `json:"dsn,omitempty"`
	Reason string     `json:"reason,omitempty"`
}

// Encode serialises c: version byte, type byte, uvarint metadata length,
// JSON metadata, then the raw body (Enqueue only).
func (c *Command) Encode() ([]byte, error) {
	meta, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode queue command: %w", err)
	}
	buf := make([]byte, 0, 2+binary.MaxVarintLen64+len(meta)+len(c.Body))
	buf = append(buf, commandVersion, byte(c.Type))
	buf = binary.AppendUvarint(buf, uint64(len(meta)))
	buf = append(buf, meta...)
	buf = append(buf, c.Body...)
	return buf, nil
}

// ErrUnknownCommand is returned by Decode for a type this version does not know.
var ErrUnknownCommand = errors.New("unknown queue command")

// Decode parses an entry made by Encode. It validates everything it reads:
// an entry may come from another node or a damaged log.
func Decode(b []byte) (*Command, error) {
	if len(b) < 3 {
		return nil, errors.New("decode queue command: short entry")
	}
	if b[0] != commandVersion {
		return nil, fmt.Errorf("decode queue command: unsupported version %d", b[0])
	}
	c := &Command{Type: CommandType(b[1])}
	n, k := binary.Uvarint(b[2:])
	if k <= 0 || n > maxMetaLen || n > uint64(len(b)-2-k) {
		return nil, errors.New("decode queue command: bad metadata length")
	}
	meta := b[2+k : 2+k+int(n)]
	if err := json.Unmarshal(meta, c); err != nil {
		return nil, fmt.Errorf("decode queue command: %w", err)
	}
	c.Body = b[2+k+int(n):]
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("decode queue command: %w", err)
	}
	return c, nil
}

func (c *Command) validate() error {
	switch c.Type {
	case CmdEnqueue:
		if c.Message == nil {
			return errors.New("enqueue without message")
		}
		if err := ValidateID(c.Message.ID); err != nil {
			return err
		}
		if len(c.Message.Recipients) == 0 {
			return errors.New("enqueue without recipients")
		}
	case CmdResult, CmdDefer:
		if err := ValidateID(c.ID); err != nil {
			return err
		}
		for _, r := range c.Results {
			if r.Index < 0 {
				return fmt.Errorf("negative recipient index %d", r.Index)
			}
			switch r.Status {
			case RcptSent, RcptBounced, RcptDeferred:
			default:
				return fmt.Errorf("invalid recipient status %q", r.Status)
			}
		}
	case CmdDelete, CmdHold, CmdRelease, CmdRequeue, CmdFlush, CmdActivate:
		for _, id := range c.IDs {
			if err := ValidateID(id); err != nil {
				return err
			}
		}
	default:
		if c.Type&IgnoreIfUnknown == 0 {
			return fmt.Errorf("%w: type %d", ErrUnknownCommand, c.Type)
		}
	}
	return nil
}
