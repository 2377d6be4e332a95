package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yubin-mta/yubin/internal/mailbox"
)

// DefaultPath is the PATH every command gets (_PATH_DEFPATH).
const DefaultPath = "/usr/bin:/bin"

// OutputLimit is how much command output is kept for reports, Postfix's
// VSTREAM_BUFSIZE.
const OutputLimit = 4096

// DefaultTimeLimit is command_time_limit.
const DefaultTimeLimit = 1000 * time.Second

// shellSafe are the characters that let a command line run without a
// shell (besides blanks), as in Postfix's exec_command().
const shellSafe = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \t"

// Spec describes one command run.
type Spec struct {
	// Argv, when set, is executed directly (pipe(8) argv=).
	Argv []string
	// Command is the command line for local(8) deliveries; it runs
	// directly when it has no shell magic characters and otherwise with
	// /bin/sh -c. With Argv set, Command is only the name used in reports
	// (default Argv[0]).
	Command string
	// Env is the environment besides PATH, as NAME=value strings.
	Env []string
	// Dir is the working directory; "" means "/".
	Dir string
	// RunAs switches to this uid/gid (no supplementary groups) before
	// exec. Nil runs with the agent's own identity.
	RunAs *mailbox.Owner
	// TimeLimit bounds the run; 0 means DefaultTimeLimit.
	TimeLimit time.Duration
	// Input writes the message to the command's standard input.
	Input func(io.Writer) error
}

// Outcome is the result of Run.
type Outcome struct {
	Status mailbox.Status
	DSN    string
	// Reason is Postfix's text for a failure, e.g. `Command died with
	// status 1: "/bin/false". Command output: oops `; empty on success.
	Reason string
	// Output is the captured, sanitised command output.
	Output string
}

// Run executes the command described by s and interprets its exit.
func Run(ctx context.Context, s Spec) Outcome {
	name := s.Command
	if name == "" && len(s.Argv) > 0 {
		name = s.Argv[0]
	}
	argv, err := resolveArgv(s)
	if err != nil {
		return Outcome{Status: mailbox.Bounced, DSN: "5.3.5", Reason: err.Error()}
	}
	limit := s.TimeLimit
	if limit <= 0 {
		limit = DefaultTimeLimit
	}
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + DefaultPath}, s.Env...)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cred := credential(s.RunAs); cred != nil {
		cmd.SysProcAttr.Credential = cred
	}
	// Kill the whole session: a shell's children must not outlive us.
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 2 * time.Second
	out := &limitedBuffer{limit: OutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Outcome{Status: mailbox.Deferred, DSN: "4.3.0", Reason: fmt.Sprintf("Delivery failed: %v", err)}
	}
	if err := cmd.Start(); err != nil {
		// Postfix's child exits EX_TEMPFAIL when exec fails.
		return Outcome{Status: mailbox.Deferred, DSN: "4.3.0",
			Reason: fmt.Sprintf("temporary failure. Command output: execvp %s: %v", argv[0], unwrapExec(err))}
	}
	var writeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if s.Input != nil {
			writeErr = s.Input(stdin)
		}
		stdin.Close()
	}()
	waitErr := cmd.Wait()
	// Wait closes stdin, which ends a blocked Input write.
	wg.Wait()
	output := sanitize(out.Bytes())
	res := Outcome{Output: output}
	suffix := ""
	if output != "" {
		suffix = ". Command output: " + output
	}

	if runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		res.Status, res.DSN = mailbox.Deferred, "4.3.0"
		res.Reason = fmt.Sprintf("Command time limit exceeded: %q%s", name, suffix)
		return res
	}
	if ctx.Err() != nil {
		res.Status, res.DSN = mailbox.Deferred, "4.3.0"
		res.Reason = fmt.Sprintf("Command interrupted: %q: %v", name, ctx.Err())
		return res
	}
	st := cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Status, res.DSN = mailbox.Deferred, "4.3.0"
		res.Reason = fmt.Sprintf("Command died with signal %d: %q%s", int(ws.Signal()), name, suffix)
		return res
	}
	if code := st.ExitCode(); code != 0 {
		if dsn, text, ok := splitDSN(output); ok {
			res.DSN, res.Reason = dsn, text
			if text == "" {
				res.Reason = fmt.Sprintf("Command died with status %d: %q", code, name)
			}
			res.Status = statusFor(dsn)
			return res
		}
		d := SysexitDetail(code)
		res.DSN = d.DSN
		if IsSysexit(code) {
			res.Reason = d.Text + suffix
			res.Status = statusFor(d.DSN)
		} else {
			res.Reason = fmt.Sprintf("Command died with status %d: %q%s", code, name, suffix)
			res.Status = mailbox.Bounced
		}
		return res
	}
	if writeErr != nil && !errors.Is(writeErr, syscall.EPIPE) && !errors.Is(writeErr, os.ErrClosed) {
		if errors.Is(writeErr, mailbox.ErrRead) {
			res.Status, res.DSN = mailbox.Deferred, "4.3.0"
			res.Reason = writeErr.Error()
			return res
		}
		res.Status, res.DSN = mailbox.Bounced, "5.3.0"
		res.Reason = fmt.Sprintf("Command failed: %v: %q", writeErr, name)
		return res
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		res.Status, res.DSN = mailbox.Deferred, "4.3.0"
		res.Reason = fmt.Sprintf("Command failed: %v: %q", waitErr, name)
		return res
	}
	res.Status, res.DSN = mailbox.Sent, "2.0.0"
	return res
}

func statusFor(dsn string) mailbox.Status {
	if strings.HasPrefix(dsn, "4") {
		return mailbox.Deferred
	}
	return mailbox.Bounced
}

// resolveArgv returns the argv to execute: Argv as given, the command
// line split at blanks when it has no shell magic and its program exists,
// or /bin/sh -c command.
func resolveArgv(s Spec) ([]string, error) {
	if len(s.Argv) > 0 {
		if s.Argv[0] == "" {
			return nil, fmt.Errorf("empty command name")
		}
		return s.Argv, nil
	}
	line := strings.TrimSpace(s.Command)
	if line == "" {
		return nil, fmt.Errorf("empty command")
	}
	if strings.Trim(line, shellSafe) == "" {
		fields := strings.Fields(line)
		if strings.ContainsRune(fields[0], '/') {
			return fields, nil
		}
		if p, ok := lookPath(fields[0]); ok {
			fields[0] = p
			return fields, nil
		}
		// Not on PATH: may be a shell built-in; let the shell decide.
	}
	return []string{"/bin/sh", "-c", line}, nil
}

// lookPath searches DefaultPath, the PATH the command will have (the
// agent's own PATH does not matter).
func lookPath(name string) (string, bool) {
	for _, dir := range filepath.SplitList(DefaultPath) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// credential returns the switch to o, or nil when no switch is needed
// (no owner, or the agent already runs as o and is not root).
func credential(o *mailbox.Owner) *syscall.Credential {
	if o == nil || o.UID < 0 {
		return nil
	}
	if os.Geteuid() != 0 && o.UID == os.Geteuid() && o.GID == os.Getegid() {
		return nil
	}
	return &syscall.Credential{Uid: uint32(o.UID), Gid: uint32(o.GID), Groups: []uint32{}}
}

func unwrapExec(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// splitDSN recognises an RFC 3463 code at the start of the output, as
// Postfix's dsn_valid()/dsn_split(): "5.1.1 no such user" gives
// ("5.1.1", "no such user").
func splitDSN(s string) (dsn, text string, ok bool) {
	i := 0
	digits := func(max int) bool {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n >= 1 && n <= max
	}
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return "", "", false
	}
	i = 2
	if !digits(3) || i >= len(s) || s[i] != '.' {
		return "", "", false
	}
	i++
	if !digits(3) {
		return "", "", false
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\t' {
		return "", "", false
	}
	return s[:i], strings.TrimLeft(s[i:], " \t"), true
}

// sanitize turns tabs and newlines into spaces and other non-printable
// bytes into "_", as Postfix does before putting output in a report.
func sanitize(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case c == '\t' || c == '\n':
			out[i] = ' '
		case c < ' ' || c >= 0x7f:
			out[i] = '_'
		default:
			out[i] = c
		}
	}
	return string(out)
}

// limitedBuffer keeps the first limit bytes written and discards the
// rest, so a chatty command can neither block nor exhaust memory.
type limitedBuffer struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - len(b.buf); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		b.buf = append(b.buf, p[:room]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
