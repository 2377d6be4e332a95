package cluster

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	peers := []Peer{{"a", "127.0.0.1:7001"}, {"b", "127.0.0.1:7002"}}
	base := func() Config {
		return Config{NodeName: "a", Dir: "/tmp/x", BindAddr: "127.0.0.1:7001", Peers: peers, Secret: testSecret}
	}
	for _, c := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"single node", func(c *Config) { c.BindAddr, c.Peers, c.Secret = "", nil, "" }, ""},
		{"no secret", func(c *Config) { c.Secret = "" }, "no secret"},
		{"short secret", func(c *Config) { c.Secret = "changeme" }, "at least 16"},
		{"no name", func(c *Config) { c.NodeName = "" }, "empty node name"},
		{"name with blank", func(c *Config) { c.NodeName = "a b" }, "printable ASCII"},
		{"name with =", func(c *Config) { c.NodeName = "a=b" }, "printable ASCII"},
		{"no dir", func(c *Config) { c.Dir = "" }, "directory"},
		{"peers without address", func(c *Config) { c.BindAddr = "" }, "no cluster address"},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, Peer{"a", "127.0.0.1:7003"}) }, "twice"},
		{"peer without port", func(c *Config) { c.Peers = []Peer{{"a", "127.0.0.1"}} }, "missing port"},
		{"peer port 0", func(c *Config) { c.Peers = []Peer{{"a", "127.0.0.1:0"}} }, "bad port"},
		{"peer bad name", func(c *Config) { c.Peers = []Peer{{"a,b", "127.0.0.1:1"}} }, "printable"},
		{"bad bind", func(c *Config) { c.BindAddr = "nonsense" }, "cluster address"},
		{"advertise disagrees", func(c *Config) { c.AdvertiseAddr = "127.0.0.1:9" }, "disagrees"},
		{"negative timeout", func(c *Config) { c.HeartbeatTimeout = -1 }, "negative"},
	} {
		cfg := base()
		c.change(&cfg)
		err := cfg.validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestStartRefusesUnauthenticatedLink(t *testing.T) {
	_, q := newTestFSM(t)
	ln := listenLoopback(t)
	_, err := Start(Config{NodeName: "a", Dir: t.TempDir(), Listener: ln}, q)
	if err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("start without secret: %v", err)
	}
	// The refused listener was closed, not leaked.
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener still open")
	}
}
