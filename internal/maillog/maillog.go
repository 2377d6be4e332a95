// Package maillog writes the mail log in Postfix's format, one line per event:
//
//	Nov 24 05:17:55 mx1 yubin/smtpd[4242]: 3F2A81C0D4E: client=localhost[127.0.0.1]
//
// so that `grep QUEUEID maillog` and pflogsumm work on it as on Postfix's own
// log. Every line is written with a single Write call, which keeps lines whole
// when many goroutines log at once.
package maillog

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Logger writes Postfix-format mail log lines.
type Logger struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	host   string // short host name, as syslog writes it
	name   string // syslog_name, e.g. "yubin" or "postfix"
	pid    string
	now    func() time.Time
	tap    func(service, msg string)
}

// SetTap installs a function that sees every line's service and message
// after it was written, e.g. to count events for metrics the way log-based
// Postfix exporters do. Set it before the Logger is shared.
func (l *Logger) SetTap(tap func(service, msg string)) { l.tap = tap }

// New returns a Logger writing to w with the given syslog_name and host name
// (the part before the first dot is used, as syslog does).
func New(w io.Writer, syslogName, hostname string) *Logger {
	for i := 0; i < len(hostname); i++ {
		if hostname[i] == '.' {
			hostname = hostname[:i]
			break
		}
	}
	return &Logger{w: w, host: hostname, name: syslogName, pid: strconv.Itoa(os.Getpid()), now: time.Now}
}

// Open returns a Logger for the maillog_file path. "/dev/stdout" and
// "/dev/stderr" write to the process's own streams; any other path is
// opened for appending and created if needed.
func Open(path, syslogName, hostname string) (*Logger, error) {
	switch path {
	case "/dev/stdout", "-":
		return New(os.Stdout, syslogName, hostname), nil
	case "/dev/stderr":
		return New(os.Stderr, syslogName, hostname), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open maillog_file: %w", err)
	}
	l := New(f, syslogName, hostname)
	l.closer = f
	return l, nil
}

// Discard returns a Logger that writes nothing, for tests and tools.
func Discard() *Logger { return New(io.Discard, "yubin", "localhost") }

// SetClock replaces the time source; tests use it for stable output.
func (l *Logger) SetClock(now func() time.Time) { l.now = now }

// Printf writes one line as the given Postfix service (smtpd, cleanup, qmgr,
// smtp, local, bounce, pickup, postsuper, ...).
func (l *Logger) Printf(service, format string, args ...any) {
	if l == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	line := make([]byte, 0, 64+len(msg))
	line = l.now().AppendFormat(line, time.Stamp)
	line = append(line, ' ')
	line = append(line, l.host...)
	line = append(line, ' ')
	line = append(line, l.name...)
	line = append(line, '/')
	line = append(line, service...)
	line = append(line, '[')
	line = append(line, l.pid...)
	line = append(line, "]: "...)
	line = append(line, msg...)
	line = append(line, '\n')
	l.mu.Lock()
	_, _ = l.w.Write(line) // a lost log line must not stop mail flow
	l.mu.Unlock()
	if l.tap != nil {
		l.tap(service, msg)
	}
}

// Close closes the underlying file, if Open opened one.
func (l *Logger) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

// Delays formats Postfix's delays=a/b/c/d field: time before the queue
// manager, in the queue manager, connection setup, and transmission.
func Delays(a, b, c, d time.Duration) string {
	return FormatDelay(a) + "/" + FormatDelay(b) + "/" + FormatDelay(c) + "/" + FormatDelay(d)
}

// FormatDelay formats a duration the way Postfix does in delay= and
// delays=: whole seconds from 10 s up, "0" below the 10 ms resolution
// (delay_logging_resolution_limit = 2), otherwise two significant digits
// with trailing zeros dropped ("0.34", "1.2", "0.3", "2").
func FormatDelay(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s >= 10:
		return strconv.FormatInt(int64(s+0.5), 10)
	case s < 0.01:
		return "0"
	}
	return strconv.FormatFloat(s, 'g', 2, 64)
}
