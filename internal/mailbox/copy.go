package mailbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// CopyFlags select what Copy adds to the message, after Postfix's
// mail_copy() flags and pipe(8)'s flags= letters.
type CopyFlags uint

const (
	// FromLine prepends "From sender  asctime" (pipe flag F).
	FromLine CopyFlags = 1 << iota
	// ReturnPath prepends "Return-Path: <sender>" (pipe flag R).
	ReturnPath
	// OrigRcptHeader prepends "X-Original-To: orig" when orig is known
	// (pipe flag O).
	OrigRcptHeader
	// DeliveredTo prepends "Delivered-To: recipient" (pipe flag D).
	DeliveredTo
	// QuoteFrom prepends ">" to lines starting with "From " (pipe flag >).
	QuoteFrom
	// DotStuff prepends "." to lines starting with "." (pipe flag .).
	DotStuff
	// BlankLine appends an empty line (pipe flag B).
	BlankLine
)

// Flag sets local(8) and virtual(8) use for each kind of destination.
const (
	MboxFlags    = FromLine | ReturnPath | OrigRcptHeader | DeliveredTo | QuoteFrom | BlankLine
	MaildirFlags = ReturnPath | OrigRcptHeader | DeliveredTo
	CommandFlags = FromLine | ReturnPath | OrigRcptHeader | DeliveredTo
)

// MailerDaemon stands for the null sender on a From_ line.
const MailerDaemon = "MAILER-DAEMON"

// Envelope is the envelope information Copy writes in front of a message.
type Envelope struct {
	Sender        string
	OrigRecipient string
	Recipient     string // the Delivered-To: address
	// Time is the From_ line time stamp; zero means now. It is written in
	// the process's local time zone, as asctime(localtime()) does.
	Time time.Time
	// EOL ends every line written; "" means "\n".
	EOL string
}

// ErrRead marks a failure to read the queued message, as opposed to a
// failure to write the destination.
var ErrRead = errors.New("error reading message")

// Copy writes the message read from src to dst, line by line, with the
// headers and quoting selected by flags. Input lines may end in CRLF or LF;
// output lines end in env.EOL. The last line is always terminated. Read
// errors wrap ErrRead.
func Copy(dst io.Writer, src io.Reader, env Envelope, flags CopyFlags) error {
	eol := env.EOL
	if eol == "" {
		eol = "\n"
	}
	w := bufio.NewWriterSize(dst, 64*1024)
	sender := QuoteLocal(env.Sender)
	if flags&FromLine != 0 {
		from := sender
		if from == "" {
			from = MailerDaemon
		}
		t := env.Time
		if t.IsZero() {
			t = time.Now()
		}
		fmt.Fprintf(w, "From %s  %s%s", from, t.Local().Format(time.ANSIC), eol)
	}
	if flags&ReturnPath != 0 {
		fmt.Fprintf(w, "Return-Path: <%s>%s", sender, eol)
	}
	if flags&OrigRcptHeader != 0 && env.OrigRecipient != "" {
		fmt.Fprintf(w, "X-Original-To: %s%s", QuoteLocal(env.OrigRecipient), eol)
	}
	if flags&DeliveredTo != 0 {
		fmt.Fprintf(w, "Delivered-To: %s%s", QuoteLocal(env.Recipient), eol)
	}

	r := bufio.NewReaderSize(src, 64*1024)
	lineStart := true
	for {
		line, isPrefix, err := r.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRead, err)
		}
		if lineStart {
			if flags&QuoteFrom != 0 && len(line) >= 5 && string(line[:5]) == "From " {
				w.WriteByte('>')
			}
			if flags&DotStuff != 0 && len(line) > 0 && line[0] == '.' {
				w.WriteByte('.')
			}
		}
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("error writing message: %w", err)
		}
		if !isPrefix {
			w.WriteString(eol)
		}
		lineStart = !isPrefix
	}
	if !lineStart {
		w.WriteString(eol)
	}
	if flags&BlankLine != 0 {
		w.WriteString(eol)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("error writing message: %w", err)
	}
	return nil
}
