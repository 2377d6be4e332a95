package daemon

import (
	"fmt"
	"strings"

	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/internal/rewrite"
	"github.com/yubin-mta/yubin/queue"
)

// mapSet is everything built from lookup tables; reload replaces it whole.
type mapSet struct {
	rewriter *rewrite.Rewriter
}

// openTables opens a main.cf table list such as "hash:/etc/postfix/transport,
// regexp:/etc/postfix/re".
func openTables(cfg *config.Config, name string) ([]lookup.Table, error) {
	var out []lookup.Table
	for _, spec := range cfg.List(name) {
		t, err := lookup.Open(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// isTableSpec tells a type:table entry of a domain list from a domain name.
func isTableSpec(s string) bool {
	i := strings.IndexByte(s, ':')
	return i > 0 && !strings.HasPrefix(s, "[")
}

// domainList splits a domain-list parameter (mydestination, relay_domains,
// ...) into patterns and opened tables.
func domainList(cfg *config.Config, name string, matchSubdomains bool) (rewrite.DomainList, error) {
	dl := rewrite.DomainList{MatchSubdomains: matchSubdomains}
	for _, item := range cfg.List(name) {
		if !isTableSpec(item) {
			dl.Patterns = append(dl.Patterns, item)
			continue
		}
		t, err := lookup.Open(item)
		if err != nil {
			return dl, fmt.Errorf("%s: %w", name, err)
		}
		dl.Tables = append(dl.Tables, t)
	}
	return dl, nil
}

func parentMatches(cfg *config.Config, name string) bool {
	for _, p := range cfg.List("parent_domain_matches_subdomains") {
		if p == name {
			return true
		}
	}
	return false
}

func boolParam(cfg *config.Config, name string) bool {
	b, _ := cfg.Bool(name) // validated at load
	return b
}

// rewriteSettings maps main.cf onto the rewriter's settings.
func rewriteSettings(cfg *config.Config) (rewrite.Settings, error) {
	s := rewrite.DefaultSettings(cfg.Get("myhostname"))
	s.MyDomain = cfg.Get("mydomain")
	s.MyOrigin = cfg.Get("myorigin")
	s.InetInterfaces = cfg.List("inet_interfaces")
	s.RecipientDelimiter = cfg.Get("recipient_delimiter")
	s.Relayhost = cfg.Get("relayhost")
	s.FallbackRelay = cfg.List("smtp_fallback_relay")
	if len(s.FallbackRelay) == 0 {
		s.FallbackRelay = cfg.List("fallback_relay")
	}
	s.RelayTransport = cfg.Get("relay_transport")
	s.DefaultTransport = cfg.Get("default_transport")
	s.LocalTransport = cfg.Get("local_transport")
	s.VirtualTransport = cfg.Get("virtual_transport")
	s.TransportMatchSubdomains = parentMatches(cfg, "transport_maps")
	s.AppendAtMyorigin = boolParam(cfg, "append_at_myorigin")
	s.AppendDotMydomain = boolParam(cfg, "append_dot_mydomain")
	s.SwapBangpath = boolParam(cfg, "swap_bangpath")
	// Routing on % would let user%remote@here relay: allow_untrusted_routing = no.
	s.AllowPercentHack = false
	s.OwnerRequestSpecial = boolParam(cfg, "owner_request_special")
	s.AllowMailToCommands = cfg.List("allow_mail_to_commands")
	s.AllowMailToFiles = cfg.List("allow_mail_to_files")
	var err error
	for _, d := range []struct {
		dst  *rewrite.DomainList
		name string
	}{
		{&s.MyDestination, "mydestination"},
		{&s.RelayDomains, "relay_domains"},
		{&s.VirtualAliasDomains, "virtual_alias_domains"},
		{&s.VirtualMailboxDomains, "virtual_mailbox_domains"},
	} {
		if *d.dst, err = domainList(cfg, d.name, parentMatches(cfg, d.name)); err != nil {
			return s, err
		}
	}
	if s.TransportMaps, err = openTables(cfg, "transport_maps"); err != nil {
		return s, err
	}
	if s.VirtualAliasMaps, err = openTables(cfg, "virtual_alias_maps"); err != nil {
		return s, err
	}
	for _, spec := range cfg.List("alias_maps") {
		t, err := lookup.OpenAliases(spec)
		if err != nil {
			return s, fmt.Errorf("alias_maps: %w", err)
		}
		s.AliasMaps = append(s.AliasMaps, t)
	}
	return s, nil
}

func openMaps(cfg *config.Config) (*mapSet, error) {
	s, err := rewriteSettings(cfg)
	if err != nil {
		return nil, err
	}
	r, err := rewrite.New(s)
	if err != nil {
		return nil, err
	}
	return &mapSet{rewriter: r}, nil
}

// reloadMaps re-opens every table (newaliases, reload). On error the old
// tables stay in use.
func (n *Node) reloadMaps() error {
	m, err := openMaps(n.cfg)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.maps = m
	n.mu.Unlock()
	return nil
}

func (n *Node) rewriter() *rewrite.Rewriter {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.maps.rewriter
}

// canonical applies Postfix's canonical rewrite to an envelope address.
func (n *Node) canonical(addr string) string {
	if addr == "" {
		return ""
	}
	return n.rewriter().Canonicalize(addr)
}

// expandRecipients runs virtual alias and alias expansion, as cleanup does
// before a message is queued.
func (n *Node) expandRecipients(in []queue.Recipient) ([]queue.Recipient, error) {
	r := n.rewriter()
	var out []queue.Recipient
	for _, rc := range in {
		list, err := r.Expand(rc)
		if err != nil {
			return nil, err
		}
		for _, e := range list {
			if e.Failure != nil {
				// The failed branch is kept as a recipient that the
				// scheduler bounces or defers with the expansion's reason.
				bad := e.Recipient
				bad.Target = "error:" + e.Failure.Error()
				out = append(out, bad)
				continue
			}
			out = append(out, e.Recipient)
		}
	}
	return out, nil
}
