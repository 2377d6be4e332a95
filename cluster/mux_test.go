package cluster

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
)

func TestSourceAddr(t *testing.T) {
	for _, tc := range []struct {
		listen net.Addr
		want   string // "" = no source address
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 7946}, "192.0.2.1:0"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 7946}, "[2001:db8::1]:0"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 7946, Zone: "eth0"}, "[fe80::1%eth0]:0"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 7946}, ""},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 7946}, ""},
		{&net.TCPAddr{Port: 7946}, ""},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, ""},
	} {
		got := sourceAddr(tc.listen)
		if tc.want == "" {
			if got != nil {
				t.Errorf("sourceAddr(%v) = %v, want none", tc.listen, got)
			}
			continue
		}
		if got == nil || got.String() != tc.want {
			t.Errorf("sourceAddr(%v) = %v, want %s", tc.listen, got, tc.want)
		}
	}
}

// recordingListener notes the source IP of every connection it accepts.
type recordingListener struct {
	net.Listener
	mu   sync.Mutex
	from map[string]int
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.from[c.RemoteAddr().(*net.TCPAddr).IP.String()]++
		l.mu.Unlock()
	}
	return c, err
}

func (l *recordingListener) sources() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.from))
	for ip, n := range l.from {
		out[ip] = n
	}
	return out
}

// Nodes whose listeners are bound to specific addresses connect to each
// other from those addresses: Raft, forwarded commands and all.
func TestConnectionsLeaveFromListenerIP(t *testing.T) {
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	lns := make([]*recordingListener, len(ips))
	var peers []Peer
	for i, ip := range ips {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Skipf("cannot listen on %s (loopback beyond 127.0.0.1 needed): %v", ip, err)
		}
		lns[i] = &recordingListener{Listener: ln, from: map[string]int{}}
		peers = append(peers, Peer{Name: fmt.Sprintf("node%d", i+1), Addr: ln.Addr().String()})
	}
	c := &testCluster{t: t}
	for i := range ips {
		c.nodes = append(c.nodes, &testNode{t: t, name: peers[i].Name, addr: peers[i].Addr, dir: t.TempDir(), secret: testSecret, peers: peers})
	}
	t.Cleanup(c.stop)
	for i, tn := range c.nodes {
		tn.start(lns[i])
	}
	lead := c.leader()
	// Through the follower: it dials the leader for the forward stream.
	mustApply(t, c.follower(), 1)
	waitHas(t, c.nodes, 1, 1)

	for i, ln := range lns {
		from := ln.sources()
		if len(from) == 0 {
			t.Errorf("%s (leader %s) accepted no connection", c.nodes[i].name, lead.name)
		}
		for ip := range from {
			if ip == ips[i] || !slices.Contains(ips, ip) {
				t.Errorf("%s (on %s) accepted connections from %s, want only the other nodes' addresses: %v", c.nodes[i].name, ips[i], ip, from)
			}
		}
	}
}
