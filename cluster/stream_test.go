package cluster

import (
	"context"
	"sync"
	"testing"
)

// Commands forwarded at once from a follower share one stream to the
// leader, each gets its own result, and a stream the leader broke is
// replaced by a new one for the next command.
func TestForwardStreamConcurrentAndRenewed(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead, f := c.leader(), c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.node.Apply(ctx, enqueueCmd(testID(i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	waitHas(t, []*testNode{lead}, 0, n-1)
	streams := func() []*stream {
		f.node.fwd.mu.Lock()
		defer f.node.fwd.mu.Unlock()
		var out []*stream
		for _, s := range f.node.fwd.streams {
			out = append(out, s)
		}
		return out
	}
	before := streams()
	if len(before) != 1 {
		t.Fatalf("%d forward streams after %d commands, want 1", len(before), n)
	}

	// The connection breaks (as when the leader restarts): the next
	// command goes over a new stream.
	before[0].conn.Close()
	if !poll(waitLong, func() bool { return before[0].isBroken() }) {
		t.Fatal("broken stream not noticed")
	}
	if _, err := f.node.Apply(ctx, enqueueCmd(testID(n))); err != nil {
		t.Fatalf("apply after the stream broke: %v", err)
	}
	if after := streams(); len(after) != 1 || after[0] == before[0] {
		t.Fatalf("streams after renewal: %v (before %v)", after, before)
	}
}
