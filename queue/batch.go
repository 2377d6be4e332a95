package queue

import (
	"sync"

	"github.com/hashicorp/raft"
)

// bodyWriters bounds the files written at once by one batch.
const bodyWriters = 8

// ApplyBatch implements raft.BatchingFSM. Raft hands over every entry
// committed together; the bodies of the batch's new messages are written
// to their files in parallel first (creating a file is the costly part of
// accepting a message), then the entries are applied one by one, in log
// order, exactly as Apply would.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	cmds := make([]*Command, len(logs))
	written := make([]bool, len(logs))
	var jobs []int
	f.mu.RLock()
	seen := map[string]bool{}
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		c, err := Decode(l.Data)
		if err != nil {
			continue // Apply reports it below
		}
		cmds[i] = c
		if c.Type != CmdEnqueue {
			continue
		}
		// Only a message that will really be added may touch its file: a
		// duplicate ID must not overwrite the body already queued.
		if _, exists := f.msgs[c.Message.ID]; !exists && !seen[c.Message.ID] {
			seen[c.Message.ID] = true
			jobs = append(jobs, i)
		}
	}
	f.mu.RUnlock()

	errs := make([]error, len(logs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, bodyWriters)
	for _, i := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f.bodies.write(cmds[i].Message.ID, cmds[i].Body)
			written[i] = true
		}(i)
	}
	wg.Wait()

	out := make([]any, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		if cmds[i] == nil {
			out[i] = f.Apply(l) // undecodable: Apply reports the error
			continue
		}
		var res ApplyResult
		var ids []string
		switch {
		case errs[i] != nil:
			res = ApplyResult{Err: errs[i]}
		case written[i]:
			res, ids = f.applyEnqueueWritten(cmds[i])
		default:
			res, ids = f.apply(cmds[i])
		}
		res.IDs = ids
		if f.onEvent != nil && len(ids) > 0 {
			f.onEvent(Event{Type: cmds[i].Type, IDs: ids, Index: l.Index})
		}
		out[i] = res
	}
	return out
}
