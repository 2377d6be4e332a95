package outbound

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	smtp "github.com/emersion/go-smtp"
)

// failure is a reason a recipient (or all of them) did not get through.
type failure struct {
	dsn    string // "4.4.1", "5.1.1", ...
	reason string // Postfix's wording
	relay  string // server that caused it, or "none"
}

func (f failure) permanent() bool { return strings.HasPrefix(f.dsn, "5") }

func (f failure) result(addr string) Result {
	st := Deferred
	if f.permanent() {
		st = Bounced
	}
	return Result{Addr: addr, Status: st, DSN: f.dsn, Reply: f.reason, Relay: f.relay}
}

// Commands named in "(in reply to ... command)", as in Postfix smtp_proto.c.
const (
	inReplyMail    = "MAIL FROM command"
	inReplyRcpt    = "RCPT TO command"
	inReplyData    = "DATA command"
	inReplyDataEnd = "end of DATA command"
)

// Protocol stages named in "lost connection with ... while ...".
const (
	stageGreeting = "receiving the initial server greeting"
	stageEHLO     = "performing the EHLO handshake"
	stageLHLO     = "performing the LHLO handshake"
	stageMail     = "sending MAIL FROM"
	stageRcpt     = "sending RCPT TO"
	stageData     = "sending DATA command"
	stageBody     = "sending message body"
	stageDataEnd  = "sending end of data -- message may be sent more than once"
)

// replyText rebuilds the server reply as it was on the wire, lines joined
// by a space (Postfix translits "\n" to " "): "550 5.1.1 <u@x>: Recipient
// address rejected". go-smtp strips codes from each line; we put them back.
func replyText(e *smtp.SMTPError) string {
	enh := ""
	if e.EnhancedCode != (smtp.EnhancedCode{}) && e.EnhancedCode != smtp.NoEnhancedCode {
		enh = fmt.Sprintf("%d.%d.%d ", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
	}
	lines := strings.Split(e.Message, "\n")
	parts := make([]string, len(lines))
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		parts[i] = strconv.Itoa(e.Code) + sep + enh + l
	}
	return strings.Join(parts, " ")
}

// replyDSN is the reply's enhanced status code, or class.0.0 when the
// server sent none; a code whose class disagrees with the reply code takes
// the reply code's class (as Postfix smtp_chat does).
func replyDSN(e *smtp.SMTPError) string {
	class := e.Code / 100
	if class != 2 && class != 4 && class != 5 {
		// Not a valid final reply: Postfix treats it as a protocol error.
		return "5.5.0"
	}
	ec := e.EnhancedCode
	if ec == (smtp.EnhancedCode{}) || ec == smtp.NoEnhancedCode || ec[0] < 2 || ec[0] > 5 {
		return fmt.Sprintf("%d.0.0", class)
	}
	return fmt.Sprintf("%d.%d.%d", class, ec[1], ec[2])
}

// saidFailure is "host mx[addr] said: <reply> (in reply to <cmd>)".
func saidFailure(e *smtp.SMTPError, namaddr, relay, cmd string) failure {
	return failure{
		dsn:    replyDSN(e),
		reason: fmt.Sprintf("host %s said: %s (in reply to %s)", namaddr, replyText(e), cmd),
		relay:  relay,
	}
}

// refusedFailure is the greeting/HELO rejection. A 5xx greeting counts as
// 4xx so that the next MX is tried (smtp_skip_5xx_greeting = yes).
func refusedFailure(e *smtp.SMTPError, namaddr, relay string) failure {
	dsn := replyDSN(e)
	if strings.HasPrefix(dsn, "5") {
		dsn = "4" + dsn[1:]
	}
	return failure{dsn: dsn, reason: fmt.Sprintf("host %s refused to talk to me: %s", namaddr, replyText(e)), relay: relay}
}

// ioFailure is a broken or timed-out conversation.
func ioFailure(err error, namaddr, relay, stage string) failure {
	if isTimeout(err) {
		return failure{dsn: "4.4.2", reason: fmt.Sprintf("conversation with %s timed out while %s", namaddr, stage), relay: relay}
	}
	return failure{dsn: "4.4.2", reason: fmt.Sprintf("lost connection with %s while %s", namaddr, stage), relay: relay}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// errnoText renders a connect error like strerror(3): "Connection refused".
func errnoText(err error) string {
	if isTimeout(err) {
		return "Connection timed out"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return capitalize(errno.Error())
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return capitalize(oe.Err.Error())
	}
	return capitalize(err.Error())
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
