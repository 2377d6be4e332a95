package queue

import (
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"
)

// IDGenerator makes queue IDs that are unique across a cluster: sixteen
// upper-case hex digits, like Postfix's short IDs only longer, so grep and
// pflogsumm treat them the same way. Layout: 8 digits of Unix seconds, 3 of a
// hash of the node name, 5 of a per-node counter. The FSM still refuses a
// duplicate ID, so even a hash collision cannot merge two messages.
type IDGenerator struct {
	node uint64
	seq  atomic.Uint64
	now  func() time.Time
}

// NewIDGenerator returns a generator for the named node.
func NewIDGenerator(node string) *IDGenerator {
	h := fnv.New64a()
	h.Write([]byte(node))
	g := &IDGenerator{node: h.Sum64() & 0xfff, now: time.Now}
	g.seq.Store(uint64(time.Now().UnixNano()) & 0xfffff)
	return g
}

// Next returns a new queue ID.
func (g *IDGenerator) Next() string {
	s := g.seq.Add(1) & 0xfffff
	return fmt.Sprintf("%08X%03X%05X", uint32(g.now().Unix()), g.node, s)
}

// ValidateID checks that id has the shape of a queue ID: 10 to 20 characters
// of [0-9A-Za-z]. IDs name files, so nothing else is allowed.
func ValidateID(id string) error {
	if len(id) < 10 || len(id) > 20 {
		return fmt.Errorf("invalid queue ID %q", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return fmt.Errorf("invalid queue ID %q", id)
		}
	}
	return nil
}
