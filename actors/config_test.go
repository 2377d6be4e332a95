package actors

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		errHas string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no node", func(c *Config) { c.NodeName = "" }, "node name"},
		{"active limit", func(c *Config) { c.ActiveLimit = 0 }, "qmgr_message_active_limit"},
		{"queue run delay", func(c *Config) { c.QueueRunDelay = 0 }, "queue_run_delay"},
		{"min backoff", func(c *Config) { c.MinBackoff = -time.Second }, "minimal_backoff_time"},
		{"max below min", func(c *Config) { c.MaxBackoff = time.Second }, "maximal_backoff_time"},
		{"negative lifetime", func(c *Config) { c.MaxQueueLifetime = -1 }, "lifetime"},
		{"zero lifetime is Postfix's single attempt", func(c *Config) { c.MaxQueueLifetime = 0 }, ""},
	}
	for _, tt := range tests {
		c := DefaultConfig("n1")
		tt.change(&c)
		err := c.Validate()
		switch {
		case tt.errHas == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)):
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.errHas)
		}
	}
	s := New(Config{}, nil, nil, nil, nil, nil, nil)
	if err := s.Start(); err == nil {
		t.Error("Start with an empty Config succeeded")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop of a scheduler that never started: %v", err)
	}
}

func TestDestLimitsNormalized(t *testing.T) {
	l := DestLimits{Concurrency: -1, InitialConcurrency: 0, RecipientLimit: -5, FailedCohortLimit: 0, ProcessLimit: -1, RateDelay: -time.Second}.normalized("docomo-smtp")
	want := DestLimits{Concurrency: 0, InitialConcurrency: 1, RecipientLimit: 0, FailedCohortLimit: 1, ProcessLimit: 0, LogName: "docomo-smtp"}
	if l != want {
		t.Fatalf("normalized %+v, want %+v", l, want)
	}
	cfg := DefaultConfig("n1")
	if got := cfg.limits("smtp"); got.Concurrency != 20 || got.InitialConcurrency != 5 || got.RecipientLimit != 50 || got.ProcessLimit != 100 || got.LogName != "smtp" {
		t.Fatalf("default limits %+v", got)
	}
}
