package queue

import "github.com/hashicorp/raft"

// ApplyBatch implements raft.BatchingFSM. Raft hands over every entry
// committed together; the bodies of the batch's new messages are written
// first, with one call appending them to the body store's current segment,
// then the entries are applied one by one, in log order, exactly as Apply
// would.
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
		// Only bodies of messages that will really be added are written.
		if _, exists := f.msgs[c.Message.ID]; !exists && !seen[c.Message.ID] {
			seen[c.Message.ID] = true
			jobs = append(jobs, i)
		}
	}
	f.mu.RUnlock()

	// All the batch's new bodies at once; if that fails, none is stored.
	refs := make([]BodyRef, len(logs))
	var segErr error
	if len(jobs) > 0 {
		bodies := make([][]byte, len(jobs))
		for k, i := range jobs {
			bodies[k] = cmds[i].Body
		}
		got, err := f.bodies.writeBodies(bodies)
		segErr = err
		for k, i := range jobs {
			if err == nil {
				refs[i] = got[k]
			}
			written[i] = true
		}
	}

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
		case written[i] && segErr != nil:
			res = ApplyResult{Err: segErr}
		case written[i]:
			res, ids = f.applyEnqueueWritten(cmds[i], refs[i])
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
