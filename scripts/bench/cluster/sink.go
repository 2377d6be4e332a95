package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/yubin-mta/yubin/internal/sinkdump"
)

// sink is Postfix's smtp-sink with running counters (-c), as in the shared
// harness; with a dump directory it also stores every message (-d), so that
// deliveries can be counted per Message-ID.
type sink struct {
	addr    string
	out     string // its stdout: the -c counters
	dumpDir string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func startSink(dir string, dump bool) (*sink, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &sink{addr: addr, out: filepath.Join(dir, "sink.out")}
	args := []string{"-c"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "postfix") // smtp-sink refuses to run as root
	}
	if dump {
		s.dumpDir = filepath.Join(dir, "sink")
		if err := os.MkdirAll(s.dumpDir, 0o777); err != nil {
			return nil, err
		}
		os.Chmod(s.dumpDir, 0o777)
		args = append(args, "-d", s.dumpDir+"/%H%M%S.")
	}
	args = append(args, addr, "1000")
	f, err := os.Create(s.out)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command("smtp-sink", args...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start smtp-sink: %w", err)
	}
	s.exited = make(chan struct{})
	children.add(s.cmd.Process)
	go func() { s.cmd.Wait(); children.remove(s.cmd.Process); f.Close(); close(s.exited) }()
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("smtp-sink exited; see %s", s.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stop()
	return nil, fmt.Errorf("smtp-sink did not listen on %s", addr)
}

func (s *sink) stop() {
	s.cmd.Process.Kill()
	<-s.exited
}

var mesgRE = regexp.MustCompile(`mesg=(\d+)`)

// count is the sink's last "mesg=" counter: messages received.
func (s *sink) count() int {
	f, err := os.Open(s.out)
	if err != nil {
		return 0
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 256 {
		f.Seek(st.Size()-256, io.SeekStart)
	}
	tail, _ := io.ReadAll(f)
	m := mesgRE.FindAllSubmatch(tail, -1)
	if len(m) == 0 {
		return 0
	}
	v, _ := strconv.Atoi(string(m[len(m)-1][1]))
	return v
}

// waitCount waits until the sink counted want messages and returns when
// that happened.
func (s *sink) waitCount(want int, deadline time.Time) (time.Time, error) {
	for {
		if got := s.count(); got >= want {
			return time.Now(), nil
		} else if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the sink counted %d of %d messages", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// received counts the dumped deliveries per Message-ID.
func (s *sink) received() map[string]int {
	got, _ := sinkdump.CountMessageIDs(s.dumpDir)
	return got
}
