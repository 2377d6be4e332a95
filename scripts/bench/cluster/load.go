package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	fromAddr = "from@example.com"
	toAddr   = "to@dest.example"
)

// split divides total into parts as even shares, the larger ones first.
func split(total, parts int) []int {
	out := make([]int, parts)
	for i := range out {
		out[i] = total / parts
		if i < total%parts {
			out[i]++
		}
	}
	return out
}

// runSources runs one smtp-source per node at once, with the same flags as
// the shared Postfix harness (a new connection per message), n messages
// and conc connections in all. It returns when every one is done, and fails
// unless each completed its share.
func runSources(ctx context.Context, nodes []*node, dir string, n, conc, size int) error {
	msgs, conns := split(n, len(nodes)), split(conc, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(dir, "source-"+nd.name+".out")
			cmd := exec.CommandContext(ctx, "smtp-source", "-c", "-s", strconv.Itoa(conns[i]), "-m", strconv.Itoa(msgs[i]),
				"-l", strconv.Itoa(size), "-f", fromAddr, "-t", toAddr, nd.smtp)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			err := cmd.Start()
			if err == nil {
				children.add(cmd.Process)
				err = cmd.Wait()
				children.remove(cmd.Process)
			}
			os.WriteFile(out, buf.Bytes(), 0o644)
			if got := sourceCount(buf.Bytes()); err != nil || got != msgs[i] {
				errs[i] = fmt.Errorf("smtp-source to %s: %v, %d of %d messages (see %s)", nd.name, err, got, msgs[i], out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sourceCount is the last counter smtp-source -c wrote: completed DATA commands.
func sourceCount(out []byte) int {
	fields := strings.FieldsFunc(string(out), func(r rune) bool { return r == '\r' || r == '\n' })
	for i := len(fields) - 1; i >= 0; i-- {
		if v, err := strconv.Atoi(strings.TrimSpace(fields[i])); err == nil {
			return v
		}
	}
	return 0
}

// transaction is one SMTP transaction on a fresh connection, as smtp-source
// makes them. It returns the time from the end of DATA to the server's reply
// and that reply's code.
func transaction(addr, msgID string, body []byte) (time.Duration, int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	expect := func(want int) (int, error) {
		code, err := readReply(r)
		if err == nil && code != want {
			err = fmt.Errorf("server said %d, want %d", code, want)
		}
		return code, err
	}
	if _, err := expect(220); err != nil {
		return 0, 0, err
	}
	for _, step := range []struct {
		cmd  string
		want int
	}{
		{"EHLO probe.ybbench.invalid", 250},
		{"MAIL FROM:<" + fromAddr + ">", 250},
		{"RCPT TO:<" + toAddr + ">", 250},
		{"DATA", 354},
	} {
		if _, err := conn.Write([]byte(step.cmd + "\r\n")); err != nil {
			return 0, 0, err
		}
		if code, err := expect(step.want); err != nil {
			return 0, code, fmt.Errorf("%s: %w", step.cmd, err)
		}
	}
	header := "Message-ID: " + msgID + "\r\nFrom: <" + fromAddr + ">\r\nTo: <" + toAddr + ">\r\nSubject: yubin cluster benchmark\r\n\r\n"
	if _, err := conn.Write(append([]byte(header), body...)); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := conn.Write([]byte(".\r\n")); err != nil {
		return 0, 0, err
	}
	code, err := readReply(r)
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	conn.Write([]byte("QUIT\r\n"))
	return took, code, nil
}

// readReply reads one (possibly multi-line) SMTP reply and returns its code.
func readReply(r *bufio.Reader) (int, error) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 4 {
			return 0, fmt.Errorf("short reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, fmt.Errorf("bad reply line %q", line)
		}
		if line[3] != '-' {
			return code, nil
		}
	}
}

// payload is a dot-safe message body of size bytes in lines of at most 72.
func payload(size int) []byte {
	var b bytes.Buffer
	for b.Len() < size {
		n := min(72, size-b.Len())
		if n < 3 {
			n = 3
		}
		b.WriteString(strings.Repeat("x", n-2) + "\r\n")
	}
	return b.Bytes()
}

// probe sends one message after another, round robin over the nodes, until
// stop is closed, and records each one's time from the end of DATA to the
// 250. Messages that were not accepted are counted apart.
type probe struct {
	latencies []time.Duration
	failed    int
	lastErr   error
}

func (p *probe) run(nodes []*node, size int, stop <-chan struct{}) {
	body := payload(size)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		took, code, err := transaction(nodes[i%len(nodes)].smtp, fmt.Sprintf("<probe-%d@ybbench.invalid>", i), body)
		if err != nil || code != 250 {
			p.failed++
			p.lastErr = fmt.Errorf("probe to %s: code %d: %v", nodes[i%len(nodes)].name, code, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.latencies = append(p.latencies, took)
	}
}

// acked records which Message-IDs a client saw a 250 for.
type acked struct {
	mu  sync.Mutex
	ids map[string]bool
	lat []time.Duration
}

func (a *acked) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.ids) }

// sendAll sends n messages with conc clients, round robin over the nodes;
// after a failure a client tries the next node, as a client tries the next
// MX. It gives up on a message after the deadline.
func sendAll(nodes []*node, n, conc, size int, deadline time.Time, a *acked) {
	body := payload(size)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id := fmt.Sprintf("<failover-%d@ybbench.invalid>", i)
				for try := 0; time.Now().Before(deadline); try++ {
					took, code, err := transaction(nodes[(i+try)%len(nodes)].smtp, id, body)
					if err == nil && code == 250 {
						a.mu.Lock()
						a.ids[id] = true
						a.lat = append(a.lat, took)
						a.mu.Unlock()
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}
