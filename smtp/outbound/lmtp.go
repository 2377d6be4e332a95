package outbound

import (
	"errors"
	"strings"

	smtp "github.com/emersion/go-smtp"
)

// finishLMTP ends DATA on an LMTP session and maps the per-recipient
// replies (RFC 2033 section 4.2) to results. It returns whether the
// session is still usable.
func (d *delivery) finishLMTP(s *session, w *smtp.DataCommand, accepted []int) bool {
	resps, err := w.CloseWithLMTPResponse()
	var perRcpt smtp.LMTPDataError
	errors.As(err, &perRcpt)
	broken := err != nil && perRcpt == nil
	if _, direct := err.(smtp.LMTPDataError); !direct && perRcpt != nil {
		joined, _ := err.(interface{ Unwrap() []error })
		// errors.Join(ioErr, perRcpt): some replies were read, then I/O failed.
		broken = joined == nil
		if joined != nil {
			for _, e := range joined.Unwrap() {
				var l smtp.LMTPDataError
				if !errors.As(e, &l) {
					broken = true
				}
			}
		}
	}
	for _, i := range accepted {
		addr := d.req.Recipients[i].Addr
		if r, ok := resps[addr]; ok {
			d.finish(i, Result{Status: Sent, DSN: successDSN(r.StatusText),
				Reply: "250 " + strings.ReplaceAll(r.StatusText, "\n", " 250 "), Relay: s.cd.relay()})
			continue
		}
		if se, ok := perRcpt[addr]; ok {
			// LMTP servers are final: nothing else would take the mail.
			d.fail(i, saidFailure(se, s.cd.namaddr(), s.cd.relay(), inReplyDataEnd), true)
			continue
		}
		cause := err
		if cause == nil {
			cause = errors.New("no reply")
		}
		d.fail(i, ioFailure(cause, s.cd.namaddr(), s.cd.relay(), stageDataEnd), true)
	}
	return !broken
}
