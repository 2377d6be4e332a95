package actors

import (
	"time"

	"github.com/yubin-mta/yubin/queue"
)

// UnrecordedResults is for a delivery node whose job ran but whose
// scheduler never confirmed it recorded the results (the leader died or
// hung up after the job ran). Without a record, the next scheduler would
// deliver those recipients again. The node may commit the plain successes
// itself: they need nothing more from a scheduler. A bounce or a success
// with NOTIFY=SUCCESS needs the scheduler to send a notice, and a deferral
// is retried anyway, so those are left for the next scheduler.
//
// It returns the command to commit, or nil when there is nothing to
// record, and the delivery log lines to write once it is committed.
func UnrecordedResults(job *Job, results []Result, now time.Time) (*queue.Command, []string) {
	byIndex := make(map[int]JobRecipient, len(job.Recipients))
	for _, r := range job.Recipients {
		byIndex[r.Index] = r
	}
	var cmd *queue.Command
	var lines []string
	total := now.Sub(job.Message.Arrival)
	for _, r := range results {
		jr, ok := byIndex[r.Index]
		if !ok || r.Status != queue.RcptSent || wantsNotice(jr.Notify, NoticeSuccess) {
			continue
		}
		if cmd == nil {
			cmd = &queue.Command{Type: queue.CmdResult, ID: job.QueueID, Now: now}
		}
		cmd.Results = append(cmd.Results, queue.RcptResult{Index: r.Index, Status: r.Status, DSN: resultDSN(r), Reason: r.Reply})
		// The queue manager's share (b) is not known here; it is counted
		// with the time before the delivery (a).
		a := max(0, total-r.ConnSetup-r.Transmission)
		lines = append(lines, deliveryLine(job.QueueID, jr.Addr, jr.OrigAddr, r, total, a, 0))
	}
	return cmd, lines
}
