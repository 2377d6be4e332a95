package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Peer is one voter of the initial cluster.
type Peer struct {
	Name string // node name, the Raft server ID
	Addr string // host:port of its cluster listener
}

// Config describes this node.
type Config struct {
	NodeName string // yubin_node_name
	Dir      string // Raft data: log, stable store, snapshots

	// BindAddr is the cluster listener (yubin_cluster_address). Empty, with
	// no Listener either, means a single node with no network transport.
	BindAddr string
	// Listener, when set, is an already bound TCP listener used instead of
	// listening on BindAddr (tests, socket activation). Start takes it over.
	Listener net.Listener
	// AdvertiseAddr is the address other nodes reach this one at. Default:
	// this node's entry in Peers, else the listener's address.
	AdvertiseAddr string

	// Peers are the initial voters, this node included
	// (yubin_cluster_peers). See DESIGN.md for the bootstrap rule.
	Peers []Peer
	// Secret authenticates cluster members (yubin_cluster_secret); required
	// with a cluster listener, at least MinSecretLen bytes.
	Secret string

	Logger hclog.Logger

	// Timing; zero values take defaults tuned for a LAN.
	HeartbeatTimeout time.Duration // default 500ms
	ElectionTimeout  time.Duration // default 500ms
	// ApplyTimeout bounds Apply, Join, Leave and Barrier when the caller's
	// context has no deadline. Default 10s.
	ApplyTimeout time.Duration

	// Snapshots; zero values take defaults.
	SnapshotThreshold uint64 // log entries between snapshots, default 4096
	TrailingLogs      uint64 // entries kept after a snapshot, default 2048
	// LogSegmentSize is the size of one raft-wal segment file, default
	// 64 MiB. Compaction frees whole segments only, and entries of the
	// segment being written stay readable, so a follower needs the snapshot
	// only once the entries it misses are in a deleted segment.
	LogSegmentSize int

	// Deliveries runs the delivery jobs the leader hands to this node over
	// the cluster link; nil refuses them (the leader then delivers itself).
	Deliveries DeliveryHandler
}

const (
	defaultHeartbeat    = 500 * time.Millisecond
	defaultElection     = 500 * time.Millisecond
	defaultApplyTimeout = 10 * time.Second
	defaultSnapshotAt   = 4096
	defaultTrailingLogs = 2048
)

func orDefault[T comparable](v, def T) T {
	var zero T
	if v != zero {
		return v
	}
	return def
}

// networked reports whether the node has a cluster listener.
func (c *Config) networked() bool { return c.BindAddr != "" || c.Listener != nil }

// validate checks everything Start can check before touching the disk.
func (c *Config) validate() error {
	if err := validateName(c.NodeName); err != nil {
		return fmt.Errorf("cluster: node name: %w", err)
	}
	if c.Dir == "" {
		return errors.New("cluster: raft directory is empty")
	}
	if c.LogSegmentSize < 0 {
		return errors.New("cluster: negative log segment size")
	}
	if c.HeartbeatTimeout < 0 || c.ElectionTimeout < 0 || c.ApplyTimeout < 0 {
		return errors.New("cluster: negative timeout")
	}
	seen := make(map[string]bool, len(c.Peers))
	for _, p := range c.Peers {
		if err := validateName(p.Name); err != nil {
			return fmt.Errorf("cluster: peer %q: %w", p.Name, err)
		}
		if err := validateAddr(p.Addr); err != nil {
			return fmt.Errorf("cluster: peer %q: %w", p.Name, err)
		}
		if seen[p.Name] {
			return fmt.Errorf("cluster: peer %q listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	if !c.networked() {
		if len(c.Peers) > 0 {
			return errors.New("cluster: peers are listed but no cluster address is set (yubin_cluster_address)")
		}
		return nil
	}
	// Never an unauthenticated cluster link.
	if c.Secret == "" {
		return errors.New("cluster: a cluster address is set but no secret (yubin_cluster_secret)")
	}
	if len(c.Secret) < MinSecretLen {
		return fmt.Errorf("cluster: secret has %d bytes, need at least %d (yubin_cluster_secret; e.g. `openssl rand -base64 32`)", len(c.Secret), MinSecretLen)
	}
	if c.BindAddr != "" && c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
			return fmt.Errorf("cluster: cluster address %q: %w", c.BindAddr, err)
		}
	}
	if c.AdvertiseAddr != "" {
		if err := validateAddr(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("cluster: advertise address: %w", err)
		}
	}
	if self, ok := c.selfPeer(); ok && c.AdvertiseAddr != "" && self.Addr != c.AdvertiseAddr {
		return fmt.Errorf("cluster: peer entry %s=%s disagrees with advertise address %s", self.Name, self.Addr, c.AdvertiseAddr)
	}
	return nil
}

// selfPeer returns this node's entry in Peers.
func (c *Config) selfPeer() (Peer, bool) {
	for _, p := range c.Peers {
		if p.Name == c.NodeName {
			return p, true
		}
	}
	return Peer{}, false
}

// advertise picks the address this node is known by, given its listener.
func (c *Config) advertise(ln net.Listener) (string, error) {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr, nil
	}
	if self, ok := c.selfPeer(); ok {
		return self.Addr, nil
	}
	addr := ln.Addr().String()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("cluster: listener address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("cluster: listening on %s, which other nodes cannot dial; list this node in the peers or set an advertise address", addr)
	}
	return addr, nil
}

// validateName checks a node name: it is the Raft server ID and appears in
// main.cf lists, so printable ASCII without blanks, '=' or ','.
func validateName(name string) error {
	if name == "" {
		return errors.New("empty node name")
	}
	if len(name) > 255 {
		return fmt.Errorf("node name of %d bytes is too long", len(name))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '=' || c == ',' {
			return fmt.Errorf("node name %q: only printable ASCII without blanks, '=' or ','", name)
		}
	}
	return nil
}

// validateAddr checks a host:port a node can be dialled at.
func validateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" || len(addr) > 300 {
		return fmt.Errorf("address %q: want host:port", addr)
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("address %q: bad host", addr)
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("address %q: bad port", addr)
	}
	return nil
}
