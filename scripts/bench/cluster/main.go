// Command cluster is the cluster half of `make bench`: it builds a yubin
// cluster of several nodes on loopback, measures it, and prints one summary
// line in the format of the shared Postfix harness (../shared/bench), so
// that scripts/bench/compare.py can set it against single-node Postfix
// measured in the same run.
//
//	cluster -mode accept   -n 2000 -conc 10 -size 1000
//	cluster -mode relay    -n 2000 -conc 10 -size 1000
//	cluster -mode failover -n 3000 -conc 9  -size 1000
//
// accept: smtp-source sends n messages, spread evenly over the nodes' SMTP
// ports with conc connections in all (the same client and total concurrency
// as the Postfix run); every message is put on hold, so only acceptance is
// measured: a 250 means the message is in the Raft log on a majority of the
// nodes' disks. Beside the load, one probe connection after another, round
// robin over the nodes, measures the time from the end of DATA to the 250
// (p50/p99 of these, and the number of probe messages, are reported).
//
// relay: the same load, every message relayed to smtp-sink; e2e is until the
// sink counted every message (the load's and the probe's).
//
// failover: conc Go clients send n messages with unique Message-IDs, round
// robin over the nodes, each retrying on another node after an error (as a
// real client would try the next MX), while smtp-sink stores every delivered
// message. Once a third of them was acknowledged, the leader is killed with
// SIGKILL; when the load is done it is started again. Reported: messages
// acknowledged and lost (must be 0), duplicate deliveries, the deliveries in
// flight at the kill (the leader's own gauge, read just before), the time from
// the kill until deliveries resumed and the longest stall in deliveries.
//
// Only 127.0.0.1 is used; every process started is stopped by PID.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children are the processes this run started and has not yet reaped.
var children processes

type processes struct {
	mu    sync.Mutex
	procs map[*os.Process]bool
}

func (p *processes) add(proc *os.Process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs == nil {
		p.procs = map[*os.Process]bool{}
	}
	p.procs[proc] = true
}

func (p *processes) remove(proc *os.Process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.procs, proc)
}

// stopAll sends SIGTERM to every child, and SIGKILL to those still there
// after five seconds.
func (p *processes) stopAll() {
	p.mu.Lock()
	procs := make([]*os.Process, 0, len(p.procs))
	for proc := range p.procs {
		procs = append(procs, proc)
	}
	p.mu.Unlock()
	for _, proc := range procs {
		proc.Signal(syscall.SIGTERM)
	}
	for i := 0; i < 50 && p.count() > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	for _, proc := range procs {
		proc.Kill()
	}
}

func (p *processes) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.procs)
}

type options struct {
	mode      string
	n         int
	conc      int
	size      int
	nodes     int
	yubin     string
	root      string
	idleMin   int
	idleWait  time.Duration
	timeout   time.Duration
	extraMain string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "accept", "accept, relay or failover")
	flag.IntVar(&o.n, "n", 2000, "messages to send")
	flag.IntVar(&o.conc, "conc", 10, "client connections in all, spread over the nodes")
	flag.IntVar(&o.size, "size", 1000, "message payload in bytes (smtp-source -l)")
	flag.IntVar(&o.nodes, "nodes", 3, "cluster size")
	flag.StringVar(&o.yubin, "yubin", "bin/yubin", "the yubin binary")
	flag.StringVar(&o.root, "root", "/tmp/yubin-bench/cluster", "scratch directory, under /tmp")
	flag.IntVar(&o.idleMin, "idle-min", 85, "wait until the machine is this % idle before measuring")
	flag.DurationVar(&o.idleWait, "idle-wait", 20*time.Second, "wait at most this long for an idle machine")
	flag.DurationVar(&o.timeout, "timeout", 300*time.Second, "abandon a run after this long")
	flag.StringVar(&o.extraMain, "main", "", "extra main.cf settings, ';'-separated")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(2)
	}
	// On INT/TERM (bench.sh stops its child so), stop every process this
	// run started before exiting.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "cluster: %v: stopping what this run started\n", sig)
		children.stopAll()
		os.Exit(130)
	}()
	line, err := run(o)
	if line != "" {
		fmt.Println(line)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func (o *options) validate() error {
	switch o.mode {
	case "accept", "relay", "failover":
	default:
		return fmt.Errorf("unknown -mode %q (want accept, relay or failover)", o.mode)
	}
	if o.n < 1 || o.conc < 1 || o.size < 0 {
		return errors.New("-n and -conc must be positive, -size not negative")
	}
	if o.nodes < 3 || o.nodes > 9 {
		return fmt.Errorf("-nodes %d: want 3 to 9", o.nodes)
	}
	if o.mode != "failover" && o.conc < o.nodes {
		return fmt.Errorf("-conc %d is less than one connection per node", o.conc)
	}
	abs, err := filepath.Abs(o.root)
	if err != nil || !strings.HasPrefix(abs, "/tmp/") {
		return fmt.Errorf("-root %q must be under /tmp", o.root)
	}
	o.root = abs
	if o.yubin, err = filepath.Abs(o.yubin); err != nil {
		return err
	}
	if _, err := os.Stat(o.yubin); err != nil {
		return fmt.Errorf("no yubin binary: %w (run make build)", err)
	}
	for _, tool := range []string{"smtp-source", "smtp-sink"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed (run make test-deps)", tool)
		}
	}
	return nil
}

func run(o options) (string, error) {
	if err := os.RemoveAll(o.root); err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.root, 0o755); err != nil {
		return "", err
	}
	switch o.mode {
	case "accept":
		return runAccept(o)
	case "relay":
		return runRelay(o)
	default:
		return runFailover(o)
	}
}
