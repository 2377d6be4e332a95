package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/dnsres"
	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/internal/sasl"
	"github.com/yubin-mta/yubin/queue"
	"github.com/yubin-mta/yubin/smtp/inbound"
	"github.com/yubin-mta/yubin/smtp/policy"
)

// openTable opens any table a restriction or recipient map names, with
// Postfix's passwd.byname as the system password database.
func openTable(spec string) (lookup.Table, error) {
	switch strings.TrimPrefix(spec, "proxy:") {
	case "unix:passwd.byname":
		return policy.PasswdTable(), nil
	}
	return lookup.Open(spec)
}

func openTableList(cfg *config.Config, service, name string, aliases bool) ([]lookup.Table, error) {
	var out []lookup.Table
	for _, spec := range config.SplitList(cfg.ServiceParam(service, name)) {
		open := openTable
		if aliases && !strings.Contains(spec, "passwd.byname") {
			open = lookup.OpenAliases
		}
		t, err := open(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// policyEnv describes the address classes for the restrictions of one service.
func policyEnv(cfg *config.Config, service string) (*policy.TableEnv, error) {
	env := &policy.TableEnv{RecipientDelimiter: cfg.Get("recipient_delimiter")}
	var err error
	local := append(cfg.ServiceList(service, "mydestination"), bracketed(cfg.List("inet_interfaces"))...)
	for _, d := range []struct {
		dst     **policy.DomainList
		entries []string
		name    string
	}{
		{&env.LocalDomains, local, "mydestination"},
		{&env.VirtualAliasDomains, cfg.ServiceList(service, "virtual_alias_domains"), "virtual_alias_domains"},
		{&env.VirtualMailboxDomains, cfg.ServiceList(service, "virtual_mailbox_domains"), "virtual_mailbox_domains"},
		{&env.RelayDomains, cfg.ServiceList(service, "relay_domains"), "relay_domains"},
	} {
		if *d.dst, err = policy.NewDomainList(d.entries, parentMatches(cfg, d.name), openTable); err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	// local_recipient_maps = proxy:unix:passwd.byname $alias_maps: the
	// alias part must be read with aliases(5) syntax.
	for _, spec := range config.SplitList(cfg.ServiceParam(service, "local_recipient_maps")) {
		var t lookup.Table
		if strings.Contains(spec, "passwd.byname") {
			t, err = openTable(spec)
		} else if isAliasSpec(cfg, spec) {
			t, err = lookup.OpenAliases(spec)
		} else {
			t, err = openTable(spec)
		}
		if err != nil {
			return nil, fmt.Errorf("local_recipient_maps: %w", err)
		}
		env.LocalRecipientMaps = append(env.LocalRecipientMaps, t)
	}
	if env.VirtualAliasMaps, err = openTableList(cfg, service, "virtual_alias_maps", false); err != nil {
		return nil, err
	}
	if env.VirtualMailboxMaps, err = openTableList(cfg, service, "virtual_mailbox_maps", false); err != nil {
		return nil, err
	}
	if env.RelayRecipientMaps, err = openTableList(cfg, service, "relay_recipient_maps", false); err != nil {
		return nil, err
	}
	return env, nil
}

func isAliasSpec(cfg *config.Config, spec string) bool {
	for _, a := range cfg.List("alias_maps") {
		if a == spec {
			return true
		}
	}
	return false
}

// bracketed turns inet_interfaces addresses into [ip] domain literals,
// which are local destinations.
func bracketed(ifaces []string) []string {
	var out []string
	for _, a := range ifaces {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, "["+ip.String()+"]")
		}
	}
	return out
}

func restrictionClasses(cfg *config.Config, service string) map[string][]string {
	classes := map[string][]string{}
	for _, name := range config.SplitList(cfg.ServiceParam(service, "smtpd_restriction_classes")) {
		classes[name] = config.SplitList(cfg.ServiceParam(service, name))
	}
	return classes
}

// smtpdSettings builds an SMTP server's settings from main.cf with the
// -o overrides of its master.cf service.
func (n *Node) smtpdSettings(svc config.Service, resolver policy.Resolver) (inbound.Settings, error) {
	cfg := n.cfg
	p := func(name string) string { return cfg.ServiceParam(svc.Name, name) }
	list := func(name string) []string { return config.SplitList(p(name)) }
	env, err := policyEnv(cfg, svc.Name)
	if err != nil {
		return inbound.Settings{}, err
	}
	nets, err := policy.ParseNetworks(cfg.ServiceList(svc.Name, "mynetworks"))
	if err != nil {
		return inbound.Settings{}, fmt.Errorf("mynetworks: %w", err)
	}
	loginMaps, err := openTableList(cfg, svc.Name, "smtpd_sender_login_maps", false)
	if err != nil {
		return inbound.Settings{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	pc := policy.Config{
		ClientRestrictions:      list("smtpd_client_restrictions"),
		HeloRestrictions:        list("smtpd_helo_restrictions"),
		SenderRestrictions:      list("smtpd_sender_restrictions"),
		RelayRestrictions:       list("smtpd_relay_restrictions"),
		RecipientRestrictions:   list("smtpd_recipient_restrictions"),
		DataRestrictions:        list("smtpd_data_restrictions"),
		RestrictionClasses:      restrictionClasses(cfg, svc.Name),
		RejectUnlistedRecipient: p("smtpd_reject_unlisted_recipient") != "no",
		NullAccessLookupKey:     p("smtpd_null_access_lookup_key"),
		SenderLoginMaps:         loginMaps,
		RecipientDelimiter:      p("recipient_delimiter"),
		MyNetworks:              nets,
		Env:                     env,
		OpenTable:               openTable,
		Resolver:                resolver,
	}
	if len(pc.RelayRestrictions) == 0 && !hasRelayControl(pc.RecipientRestrictions) {
		return inbound.Settings{}, fmt.Errorf("service %s: specify at least one working instance of reject_unauth_destination, defer_unauth_destination, reject or defer in smtpd_relay_restrictions or smtpd_recipient_restrictions (refusing to run an open relay)", svc.Name)
	}
	checker, err := policy.New(pc)
	if err != nil {
		return inbound.Settings{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	ints := map[string]*int{}
	s := inbound.Settings{
		Hostname:          p("myhostname"),
		Banner:            p("smtpd_banner"),
		MyOrigin:          p("myorigin"),
		ForbidBareNewline: p("smtpd_forbid_bare_newline"),
		HeloRequired:      p("smtpd_helo_required") == "yes",
		DisableVRFY:       p("disable_vrfy_command") == "yes",
		Policy:            checker,
		Resolver:          resolver,
		Log:               n.log,
		ServiceName:       "smtpd",
		Service:           svc.Name,
		// Node.Submit logs the qmgr line for every origin of mail.
		Queued:                func(*queue.Message) {},
		AllowUnauthPipelining: p("smtpd_forbid_unauth_pipelining") == "no",
	}
	ints["smtpd_recipient_limit"] = &s.RecipientLimit
	ints["hopcount_limit"] = &s.HopcountLimit
	ints["header_size_limit"] = &s.HeaderSizeLimit
	ints["smtpd_hard_error_limit"] = &s.HardErrorLimit
	ints["smtpd_soft_error_limit"] = &s.SoftErrorLimit
	ints["smtpd_junk_command_limit"] = &s.JunkCommandLimit
	for name, dst := range ints {
		v, err := config.ParseInt(p(name))
		if err != nil {
			return s, fmt.Errorf("service %s: %s: %w", svc.Name, name, err)
		}
		*dst = int(v)
	}
	if s.MessageSizeLimit, err = config.ParseSize(p("message_size_limit")); err != nil {
		return s, fmt.Errorf("service %s: message_size_limit: %w", svc.Name, err)
	}
	if s.MessageSizeLimit == 0 {
		s.MessageSizeLimit = 1 << 40 // 0 means no limit in Postfix
	}
	if s.QueueMinFree, err = config.ParseSize(p("queue_minfree")); err != nil {
		return s, fmt.Errorf("service %s: queue_minfree: %w", svc.Name, err)
	}
	s.FreeSpace = n.freeSpace
	if s.TLSConfig, err = n.serverTLS(svc.Name); err != nil {
		return s, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if err := n.smtpdSecurity(svc, &s); err != nil {
		return s, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if s.Timeout, err = config.ParseDuration(p("smtpd_timeout"), 's'); err != nil {
		return s, fmt.Errorf("service %s: smtpd_timeout: %w", svc.Name, err)
	}
	if s.ErrorSleepTime, err = config.ParseDuration(p("smtpd_error_sleep_time"), 's'); err != nil {
		return s, fmt.Errorf("service %s: smtpd_error_sleep_time: %w", svc.Name, err)
	}
	if s.ErrorSleepTime == 0 {
		s.ErrorSleepTime = -1 // inbound treats 0 as "default"; 0 here means no sleep
	}
	return s, nil
}

// smtpdSecurity maps the TLS policy, SMTP AUTH and the anvil limits of a
// service onto s (after s.TLSConfig is set).
func (n *Node) smtpdSecurity(svc config.Service, s *inbound.Settings) error {
	p := func(name string) string { return n.cfg.ServiceParam(svc.Name, name) }
	switch p("smtpd_tls_security_level") {
	case "encrypt":
		if s.TLSConfig == nil {
			return fmt.Errorf("smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file")
		}
		s.TLSRequired = true
	}
	// Postfix's default is smtpd_tls_auth_only = no; yubin never takes a
	// password over plaintext unless the administrator wrote "no" down.
	_, overridden := svc.Overrides["smtpd_tls_auth_only"]
	explicit := overridden || n.cfg.IsSet("smtpd_tls_auth_only")
	s.AllowPlaintextAuth = explicit && p("smtpd_tls_auth_only") == "no"
	s.SASLAuthenticatedHeader = p("smtpd_sasl_authenticated_header") == "yes"
	if p("smtpd_sasl_auth_enable") == "yes" {
		v, err := openSASL(n.cfg, p)
		if err != nil {
			return err
		}
		s.SASL = v
		if s.TLSConfig == nil && !s.AllowPlaintextAuth {
			n.log.Printf("smtpd", "warning: service %s: smtpd_sasl_auth_enable = yes without smtpd_tls_cert_file: AUTH is never offered (set smtpd_tls_auth_only = no to allow it without TLS)", svc.Name)
		}
	}
	return smtpdLimits(p, &s.Limits)
}

// openSASL opens smtpd_sasl_type/smtpd_sasl_path: a Dovecot socket path
// is relative to $queue_directory as in Postfix, a password file to the
// configuration directory.
func openSASL(cfg *config.Config, p func(string) string) (sasl.Verifier, error) {
	typ, path := p("smtpd_sasl_type"), p("smtpd_sasl_path")
	base := cfg.Directory()
	switch typ {
	case sasl.TypeDovecot:
		base = cfg.Get("queue_directory")
	case sasl.TypePasswd:
		if path == "smtpd" { // Postfix's default names a Cyrus application
			return nil, fmt.Errorf("smtpd_sasl_type = passwd needs smtpd_sasl_path = the password file (e.g. /etc/yubin/sasl_passwd)")
		}
	}
	v, err := sasl.Open(typ, path, base)
	if err != nil {
		return nil, fmt.Errorf("smtpd_sasl: %w", err)
	}
	if d, ok := v.(*sasl.Dovecot); ok {
		d.Service = p("smtpd_sasl_service")
	}
	return v, nil
}

// smtpdLimits reads the anvil limits and their exceptions.
func smtpdLimits(p func(string) string, l *inbound.Limits) error {
	for name, dst := range map[string]*int{
		"smtpd_client_connection_count_limit": &l.ConnectionCount,
		"smtpd_client_connection_rate_limit":  &l.ConnectionRate,
		"smtpd_client_message_rate_limit":     &l.MessageRate,
		"smtpd_client_recipient_rate_limit":   &l.RecipientRate,
		"smtpd_client_auth_rate_limit":        &l.AuthFailureRate,
	} {
		v, err := config.ParseInt(p(name))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		*dst = int(v)
	}
	if l.ConnectionCount == 0 {
		l.ConnectionCount = -1 // 0 means no limit in main.cf, the default in inbound
	}
	var err error
	if l.TimeUnit, err = config.ParseDuration(p("anvil_rate_time_unit"), 's'); err != nil {
		return fmt.Errorf("anvil_rate_time_unit: %w", err)
	}
	if l.TimeUnit <= 0 {
		return fmt.Errorf("anvil_rate_time_unit must be positive")
	}
	if l.Exceptions, err = policy.ParseNetworks(config.SplitList(p("smtpd_client_event_limit_exceptions"))); err != nil {
		return fmt.Errorf("smtpd_client_event_limit_exceptions (only networks are supported): %w", err)
	}
	return nil
}

func hasRelayControl(list []string) bool {
	for _, r := range list {
		switch r {
		case "reject_unauth_destination", "defer_unauth_destination", "reject", "defer", "defer_if_permit", "check_relay_domains":
			return true
		}
	}
	return false
}

// resolver answers the SMTP server's DNS questions. Loopback clients are
// "localhost" without asking DNS, as /etc/hosts would say.
type resolver struct{ *dnsres.Resolver }

func (r resolver) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	if addr.IsLoopback() {
		return []string{"localhost"}, nil
	}
	return r.Resolver.LookupPTR(ctx, addr)
}

func (r resolver) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	}
	return r.Resolver.LookupHost(ctx, host)
}

func newResolver(cfg *config.Config) (*dnsres.Resolver, error) {
	r, err := dnsres.New(cfg.List("dns_servers"), 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dns_servers: %w", err)
	}
	return r, nil
}

// startSMTP opens every smtpd listener of master.cf.
func (n *Node) startSMTP(ctx context.Context) error {
	for _, l := range n.cfg.InetListeners() {
		if l.Service.Command != "smtpd" {
			continue
		}
		s, err := n.smtpdSettings(l.Service, resolver{n.dns})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			return fmt.Errorf("service %s: %w", l.Service.Name, err)
		}
		if n.cfg.ServiceParam(l.Service.Name, "smtpd_tls_wrappermode") == "yes" {
			// smtps (port 465): TLS from the first byte.
			if s.TLSConfig == nil {
				ln.Close()
				return fmt.Errorf("service %s: smtpd_tls_wrappermode needs smtpd_tls_cert_file", l.Service.Name)
			}
			ln = tls.NewListener(ln, s.TLSConfig)
		}
		srv := inbound.NewServer(s, n)
		n.smtpd = append(n.smtpd, srv)
		go srv.Serve(ln)
	}
	return nil
}

// freeSpace is the space left for the queue: the smaller of the file
// systems of the Raft log (data_directory) and the bodies (queue_directory).
func (n *Node) freeSpace() (int64, error) {
	free := int64(-1)
	for _, dir := range []string{n.cfg.Get("data_directory"), n.cfg.Get("queue_directory")} {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		if avail := int64(st.Bavail) * int64(st.Bsize); free < 0 || avail < free {
			free = avail
		}
	}
	return free, nil
}
