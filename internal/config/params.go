package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Kind is the type of a parameter's value; Load checks every value against it.
type Kind int

const (
	KindString Kind = iota // free text
	KindBool               // yes or no
	KindInt                // decimal integer
	KindTime               // decimal integer with optional unit s, m, h, d or w
	KindSize               // decimal number of bytes
	KindList               // elements separated by commas and/or whitespace
)

func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindTime:
		return "time"
	case KindSize:
		return "size"
	case KindList:
		return "list"
	}
	return "string"
}

// Param describes one supported parameter.
type Param struct {
	Name string
	// Default is the raw, unexpanded default as `postconf -d` shows it. For
	// Derived parameters it is empty here and computed by Load.
	Default string
	Kind    Kind
	// Unit is the default time unit of a KindTime value without a suffix.
	Unit byte
	// Min is the smallest accepted KindInt or KindSize value.
	Min int64
	// Enum, when set, lists the accepted values (for a list: of each element).
	Enum []string
	// FileList marks a list whose "/file/name" elements are replaced by the
	// file's contents.
	FileList bool
	// Derived marks a default computed at Load (host name, directory, ...).
	Derived bool
	// Yubin marks a parameter that Postfix does not have.
	Yubin bool
	// Meaning is a one-line description.
	Meaning string
	// Note documents where yubin's default or meaning differs from Postfix.
	Note string
	// check validates the expanded value beyond its kind.
	check func(value string) error
	// checkElem validates each list element after /file/name expansion.
	checkElem func(elem string) error
}

// transportSuffixes are the per-transport scheduler parameters that Postfix
// accepts as TRANSPORT_SUFFIX for any transport in master.cf, mapped to the
// global parameter that is their default.
var transportSuffixes = map[string]string{
	"destination_concurrency_limit":               "default_destination_concurrency_limit",
	"destination_recipient_limit":                 "default_destination_recipient_limit",
	"destination_rate_delay":                      "default_destination_rate_delay",
	"destination_concurrency_failed_cohort_limit": "default_destination_concurrency_failed_cohort_limit",
	"initial_destination_concurrency":             "initial_destination_concurrency",
}

// TransportSuffixes returns the suffixes accepted by TransportParam, sorted.
func TransportSuffixes() []string {
	out := make([]string, 0, len(transportSuffixes))
	for s := range transportSuffixes {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// transportParam synthesizes the parameter TRANSPORT_SUFFIX.
func transportParam(transport, suffix string) (Param, bool) {
	global, ok := transportSuffixes[suffix]
	if !ok {
		return Param{}, false
	}
	p := registry[global]
	p.Name = transport + "_" + suffix
	p.Default = "$" + global
	p.Derived = false
	p.Meaning = fmt.Sprintf("%s for the %s transport", strings.ReplaceAll(suffix, "_", " "), transport)
	return p, true
}

// deliveryAgents are the master.cf commands for which postconf lists the
// per-transport parameters, as Postfix does.
var deliveryAgents = map[string]bool{
	"smtp": true, "lmtp": true, "local": true, "virtual": true, "pipe": true, "error": true,
}

// Params returns the registry of supported parameters sorted by name.
func Params() []Param {
	out := make([]Param, 0, len(registry))
	for _, p := range registry {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupParam returns the registry entry for name.
func LookupParam(name string) (Param, bool) {
	p, ok := registry[name]
	return p, ok
}

var registry = buildRegistry()

func buildRegistry() map[string]Param {
	// Duplicate names in paramTable are caught by TestRegistryNamesUnique.
	m := make(map[string]Param, len(paramTable))
	for _, p := range paramTable {
		m[p.Name] = p
	}
	return m
}

func str(name, def, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindString, Meaning: meaning}
}

func boolean(name, def, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindBool, Meaning: meaning}
}

func integer(name, def string, min int64, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindInt, Min: min, Meaning: meaning}
}

func duration(name, def string, unit byte, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindTime, Unit: unit, Meaning: meaning}
}

func size(name, def string, min int64, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindSize, Min: min, Meaning: meaning}
}

func list(name, def, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindList, Meaning: meaning}
}

func fileList(name, def, meaning string) Param {
	return Param{Name: name, Default: def, Kind: KindList, FileList: true, Meaning: meaning}
}

func (p Param) enum(values ...string) Param { p.Enum = values; return p }
func (p Param) derived() Param              { p.Derived = true; return p }
func (p Param) yubin() Param                { p.Yubin = true; return p }
func (p Param) note(n string) Param         { p.Note = n; return p }
func (p Param) checked(f func(string) error) Param {
	p.check = f
	return p
}
func (p Param) elemChecked(f func(string) error) Param {
	p.checkElem = f
	return p
}

var tlsServerLevels = []string{"", "none", "may", "encrypt"}
var tlsClientLevels = []string{"", "none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure"}

// paramTable is the registry. Defaults are those of `postconf -d` in
// Postfix 3.7 unless a Note says otherwise.
var paramTable = []Param{
	// Identity.
	str("myhostname", "", "Internet host name of this mail system; default: the machine's FQDN (os.Hostname, with .localdomain appended when it has no dot).").derived(),
	str("mydomain", "", "Internet domain name of this mail system; default: $myhostname minus its first label.").derived(),
	str("myorigin", "$myhostname", "Domain appended to unqualified sender and recipient addresses."),
	fileList("mydestination", "$myhostname, localhost.$mydomain, localhost", "Domains delivered locally by $local_transport (list; /file/name and type:table allowed)."),
	str("mail_name", "yubin", "Mail system name shown in the SMTP greeting and in bounces.").note("Postfix: Postfix."),
	str("config_directory", "", "Directory holding main.cf and master.cf; default: the directory given with -c, $MAIL_CONFIG or /etc/yubin.").derived(),
	str("compatibility_level", "3.6", "Postfix compatibility level; selects the defaults of parameters written as ${{$compatibility_level} <level {N} ? ...}. yubin starts at 3.6 (Postfix: 0), a new installation with current safe defaults and never an open relay.").checked(checkLevel).note("yubin default 3.6; Postfix 0"),
	str("multi_instance_name", "", "Instance name, used in syslog_name."),

	// Network.
	list("inet_interfaces", "all", "Addresses that inet services in master.cf listen on: all, loopback-only, or a list of addresses.").checked(checkInterfaces),
	list("inet_protocols", "all", "Address families used: all, ipv4, ipv6 or ipv4, ipv6.").enum("all", "ipv4", "ipv6"),
	fileList("mynetworks", "", "Trusted client networks (CIDR; IPv6 as [addr]/len); default: computed from mynetworks_style and the machine's interfaces.").derived().elemChecked(checkNetwork),
	str("mynetworks_style", "${{$compatibility_level} <level {2} ? {subnet} : {host}}", "How the default mynetworks is computed: host, subnet or class.").checked(checkOneOf("host", "subnet", "class")),
	list("dns_servers", "", "DNS resolvers used for MX/A/AAAA/PTR lookups as host or host:port; empty means the servers in /etc/resolv.conf.").yubin().checked(checkDNSServers),

	// Routing.
	fileList("relay_domains", "${{$compatibility_level} <level {2} ? {$mydestination} : {}}", "Domains this system relays mail to (backup MX); list, /file/name and type:table allowed."),
	str("relayhost", "", "Next-hop destination for non-local mail, e.g. [mail.isp.example]:587; empty means direct MX delivery."),
	list("fallback_relay", "", "Hosts tried when the primary destination of non-local mail is unreachable."),
	str("relay_transport", "relay", "Transport for domains listed in relay_domains."),
	str("default_transport", "smtp", "Transport for destinations not matched by any other address class."),
	str("local_transport", "local:$myhostname", "Transport for domains listed in mydestination."),
	str("virtual_transport", "virtual", "Transport for domains listed in virtual_mailbox_domains."),
	list("smtp_fallback_relay", "$fallback_relay", "Hosts the SMTP client tries when the nexthop of non-local mail is unreachable."),
	str("smtp_tcp_port", "smtp", "Default TCP port of the SMTP client (name or number)."),
	duration("yubin_delivery_takeover_delay", "2s", 's', "How long a new cluster leader waits before it starts delivering, so the old leader has closed its sessions (per-destination limits hold across a failover).").yubin(),
	str("lmtp_tcp_port", "24", "Default TCP port of the LMTP client."),
	integer("smtp_mx_address_limit", "5", 0, "Maximal number of MX host addresses the SMTP client tries; 0 means no limit."),
	str("lmtp_tls_security_level", "", "LMTP client TLS: none, may, encrypt, verify or secure."),
	list("parent_domain_matches_subdomains", "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps", "Parameters whose domain patterns also match subdomains (else .domain is needed)."),
	duration("command_time_limit", "1000s", 's', "Time limit for delivery to external commands."),
	str("default_privs", "nobody", "Rights used by the local agent for commands and files when the owner would be root."),
	list("allow_mail_to_commands", "alias, forward", "Where |command destinations are allowed: alias, forward, include."),
	list("allow_mail_to_files", "alias, forward", "Where /file destinations are allowed: alias, forward, include."),
	boolean("smtpd_reject_unlisted_recipient", "yes", "Reject RCPT TO for unknown recipients of local, virtual and relay domains."),
	str("smtpd_null_access_lookup_key", "<>", "Lookup key for the null sender in check_sender_access tables."),
	list("transport_maps", "", "Lookup tables mapping recipient or domain to transport:nexthop."),

	// Aliases and virtual domains.
	list("alias_maps", "hash:/etc/aliases", "Alias tables used by the local transport.").note("Postfix on Linux: hash:/etc/aliases, nis:mail.aliases (yubin has no NIS)."),
	list("alias_database", "hash:/etc/aliases", "Alias tables that newaliases rebuilds."),
	list("virtual_maps", "", "Obsolete name of virtual_alias_maps; its default."),
	list("virtual_alias_maps", "$virtual_maps", "Tables that rewrite recipient addresses of any domain (virtual(5))."),
	fileList("virtual_alias_domains", "$virtual_alias_maps", "Domains whose recipients all come from virtual_alias_maps (list; /file/name and type:table allowed)."),
	fileList("virtual_mailbox_domains", "$virtual_mailbox_maps", "Domains delivered by $virtual_transport (list; /file/name and type:table allowed)."),
	list("virtual_mailbox_maps", "", "Tables mapping virtual recipients to mailbox paths below virtual_mailbox_base."),
	str("virtual_mailbox_base", "", "Directory prepended to mailbox paths from virtual_mailbox_maps."),
	str("virtual_uid_maps", "", "Table giving the user ID of each virtual mailbox (static:N allowed)."),
	str("virtual_gid_maps", "", "Table giving the group ID of each virtual mailbox (static:N allowed)."),
	integer("virtual_minimum_uid", "100", 1, "Smallest user ID the virtual transport accepts from virtual_uid_maps."),
	list("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps", "Tables of valid local recipients; empty means accept any local part."),
	list("relay_recipient_maps", "", "Tables of valid recipients in relay_domains; empty means accept any."),
	str("recipient_delimiter", "", "Characters that separate a user name from an address extension (user+ext)."),

	// Limits.
	size("message_size_limit", "10240000", 0, "Largest message accepted, in bytes, headers included; 0 means no limit."),
	size("header_size_limit", "102400", 1, "Largest message header accepted, in bytes."),
	size("mailbox_size_limit", "51200000", 0, "Largest mailbox file the local transport writes to, in bytes; 0 means no limit."),
	integer("hopcount_limit", "50", 1, "Most Received: headers a message may carry before it bounces (mail loop)."),
	integer("smtpd_recipient_limit", "1000", 1, "Most recipients accepted per message by the SMTP server."),

	// SMTP server.
	str("smtpd_banner", "$myhostname ESMTP $mail_name", "Text after the 220 code of the SMTP greeting."),
	list("smtpd_relay_restrictions", "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}", "Relay-control restrictions applied to RCPT TO before smtpd_recipient_restrictions."),
	list("smtpd_recipient_restrictions", "", "Restrictions applied to RCPT TO."),
	list("smtpd_sender_restrictions", "", "Restrictions applied to MAIL FROM."),
	list("smtpd_client_restrictions", "", "Restrictions applied to the client's connection."),
	list("smtpd_helo_restrictions", "", "Restrictions applied to HELO/EHLO."),
	list("smtpd_data_restrictions", "", "Restrictions applied to DATA."),
	list("smtpd_end_of_data_restrictions", "", "Restrictions applied after the end of the message data."),
	list("smtpd_restriction_classes", "", "Names of user-defined restriction classes; each is a main.cf parameter holding a restriction list."),
	boolean("smtpd_helo_required", "no", "Require HELO or EHLO before MAIL FROM."),
	boolean("smtpd_delay_reject", "yes", "Delay client, HELO and sender rejections until RCPT TO."),
	duration("smtpd_timeout", "${stress?{10}:{300}}s", 's', "Time the SMTP server waits for a client command or data."),
	integer("smtpd_hard_error_limit", "${stress?{1}:{20}}", 1, "Errors after which the SMTP server disconnects."),
	integer("smtpd_soft_error_limit", "10", 0, "Errors after which the SMTP server delays every reply by smtpd_error_sleep_time."),
	duration("smtpd_error_sleep_time", "1s", 's', "Delay before replying with an error once the soft error limit is reached."),
	integer("smtpd_junk_command_limit", "${stress?{1}:{100}}", 1, "Junk commands (NOOP, VRFY, ETRN, RSET) per session before they count as errors."),
	integer("smtpd_client_connection_count_limit", "50", 0, "Simultaneous connections one client may have; 0 means no limit."),
	integer("smtpd_client_connection_rate_limit", "0", 0, "Connections one client may make per anvil_rate_time_unit; 0 means no limit."),
	integer("smtpd_client_message_rate_limit", "0", 0, "Messages one client may send per anvil_rate_time_unit; 0 means no limit."),
	integer("smtpd_client_recipient_rate_limit", "0", 0, "Recipient addresses one client may send per anvil_rate_time_unit; 0 means no limit."),
	integer("smtpd_client_auth_rate_limit", "0", 0, "Failed AUTH attempts one client may make per anvil_rate_time_unit before AUTH is refused with 421 and the connection closed; 0 means no limit.").note("Postfix counts every AUTH command and answers 450; yubin counts failed attempts and disconnects."),
	fileList("smtpd_client_event_limit_exceptions", "${smtpd_client_connection_limit_exceptions:$mynetworks}", "Clients (networks, as in mynetworks) exempt from the smtpd_client_*_limit limits."),
	fileList("smtpd_client_connection_limit_exceptions", "", "Obsolete name of smtpd_client_event_limit_exceptions; when set, its default becomes empty."),
	duration("anvil_rate_time_unit", "60s", 's', "Time unit of the client rate limits."),
	str("smtpd_forbid_bare_newline", "yes", "Reject (yes) or accept (no) a bare LF line ending in SMTP commands and data; normalize also allowed.").note("yubin default yes (Postfix 3.7: no; 3.9: normalize): SMTP smuggling defence").checked(checkOneOf("yes", "no", "normalize", "reject", "reject_nonbare")),
	boolean("smtpd_forbid_unauth_pipelining", "yes", "Disconnect clients that send commands ahead of time without PIPELINING.").note("yubin default yes, as Postfix 3.9 (3.7: no)"),
	boolean("allow_untrusted_routing", "no", "Forward mail with sender-specified routing (user@a@b, user%a@b) from untrusted clients."),
	boolean("disable_vrfy_command", "no", "Refuse the SMTP VRFY command."),
	boolean("strict_rfc821_envelopes", "no", "Require <> around MAIL FROM and RCPT TO addresses."),
	str("smtpd_tls_cert_file", "", "PEM certificate chain of the SMTP server."),
	str("smtpd_tls_key_file", "$smtpd_tls_cert_file", "PEM private key of the SMTP server."),
	str("smtpd_tls_security_level", "", "SMTP server TLS: none, may (offer STARTTLS) or encrypt (require it).").enum(tlsServerLevels...),
	boolean("smtpd_tls_auth_only", "no", "Offer AUTH only after STARTTLS.").note("yubin offers AUTH without TLS only when smtpd_tls_auth_only = no is set explicitly."),
	boolean("smtpd_tls_wrappermode", "no", "Run the SMTP server with TLS from the first byte (smtps, port 465); usually set with -o in master.cf."),
	boolean("smtpd_sasl_auth_enable", "no", "Offer SMTP AUTH."),
	str("smtpd_sasl_type", "cyrus", "SASL implementation: dovecot (Dovecot's auth socket) or passwd (yubin: a file of user:bcrypt/argon2id hash lines); cyrus is not supported.").enum("cyrus", "dovecot", "passwd").note("yubin adds passwd and does not support cyrus."),
	str("smtpd_sasl_path", "smtpd", "SASL socket path (dovecot: e.g. private/auth, relative to $queue_directory) or password file (passwd: e.g. /etc/yubin/sasl_passwd)."),
	boolean("smtpd_sasl_authenticated_header", "no", "Show the SASL login in the Received: header as (Authenticated sender: user)."),
	str("smtpd_sasl_service", "smtp", "Service name passed to the Dovecot authentication server."),
	list("smtpd_sender_login_maps", "", "Tables mapping a sender address to the SASL logins allowed to use it."),
	integer("unknown_local_recipient_reject_code", "550", 400, "SMTP reply code for an unknown local recipient."),

	// SMTP and LMTP client.
	str("smtp_tls_security_level", "", "SMTP client TLS: none, may, encrypt, dane, dane-only, fingerprint, verify or secure.").enum(tlsClientLevels...),
	str("smtp_tls_CAfile", "", "PEM file of trusted CA certificates for the SMTP client."),
	duration("smtp_connect_timeout", "30s", 's', "Time to complete a TCP connection to a remote SMTP server."),
	duration("smtp_helo_timeout", "300s", 's', "Time to receive the greeting and the HELO/EHLO reply."),
	duration("smtp_mail_timeout", "300s", 's', "Time to receive the MAIL FROM reply."),
	duration("smtp_rcpt_timeout", "300s", 's', "Time to receive a RCPT TO reply."),
	duration("smtp_data_init_timeout", "120s", 's', "Time to receive the DATA reply."),
	duration("smtp_data_xfer_timeout", "180s", 's', "Time to send one chunk of message content."),
	duration("smtp_data_done_timeout", "600s", 's', "Time to receive the reply to the final dot."),
	duration("smtp_quit_timeout", "300s", 's', "Time to receive the QUIT reply."),
	str("smtp_helo_name", "$myhostname", "Host name sent in HELO/EHLO by the SMTP client."),
	str("smtp_bind_address", "", "Local IPv4 address for outgoing SMTP connections; empty means any.").checked(checkOptionalIP),
	boolean("smtp_connection_cache_on_demand", "yes", "Reuse SMTP sessions to destinations with a backlog."),
	duration("lmtp_connect_timeout", "0s", 's', "Time to complete a connection to an LMTP server; 0 means the system limit."),
	duration("lmtp_data_done_timeout", "600s", 's', "Time to receive the LMTP replies to the final dot."),

	// Local delivery.
	str("home_mailbox", "", "Mailbox path relative to the home directory (Maildir/ for maildir); empty means mail_spool_directory."),
	str("mail_spool_directory", "/var/mail", "Directory of mbox mailboxes for local delivery."),
	str("mailbox_command", "", "Command that delivers to local mailboxes instead of the local transport (e.g. procmail)."),
	boolean("biff", "yes", "Notify the local biff service of new mail."),
	boolean("owner_request_special", "yes", "Treat owner-list and list-request addresses specially."),

	// Files and logging.
	str("queue_directory", "/var/spool/yubin", "Directory of this node's queue storage.").note("Postfix: /var/spool/postfix."),
	str("data_directory", "/var/lib/yubin", "Directory of this node's writable state (raft log, control socket).").note("Postfix: /var/lib/postfix."),
	str("maillog_file", "", "File the mail log is written to (/dev/stdout allowed); empty means syslog."),
	str("syslog_name", "${multi_instance_name?{$multi_instance_name}:{yubin}}", "Program name in mail log lines (yubin/smtpd[pid]).").note("Postfix: ...:{postfix}."),
	str("sendmail_path", "/usr/sbin/sendmail", "Path of the sendmail command."),
	str("newaliases_path", "/usr/bin/newaliases", "Path of the newaliases command."),
	str("mailq_path", "/usr/bin/mailq", "Path of the mailq command."),

	// Queue.
	size("queue_minfree", "0", 0, "Free space (bytes) the queue file system must keep; below it, and below 1.5 × message_size_limit, smtpd answers MAIL FROM with 452 4.3.1."),
	boolean("soft_bounce", "no", "Turn hard rejections and bounces into soft (retryable) ones, for testing."),
	duration("queue_run_delay", "300s", 's', "Interval between scans of the deferred queue."),
	duration("minimal_backoff_time", "300s", 's', "Shortest retry interval of a deferred message."),
	duration("maximal_backoff_time", "4000s", 's', "Longest retry interval of a deferred message."),
	duration("maximal_queue_lifetime", "5d", 'd', "Time a deferred message stays queued before it bounces."),
	duration("bounce_queue_lifetime", "5d", 'd', "Time a deferred bounce message stays queued before it is dropped."),
	duration("delay_warning_time", "0h", 'h', "Delay after which the sender gets a delay warning; 0 means none."),
	integer("qmgr_message_active_limit", "20000", 1, "Most messages in the active queue."),
	integer("default_destination_concurrency_limit", "20", 0, "Parallel deliveries to one destination; 0 means no limit."),
	integer("initial_destination_concurrency", "5", 1, "Parallel deliveries to a destination before it has proven itself (slow start)."),
	integer("default_destination_recipient_limit", "50", 0, "Recipients per delivery; 0 means no limit."),
	duration("default_destination_rate_delay", "0s", 's', "Pause between deliveries to one destination; non-zero implies concurrency 1."),
	integer("default_destination_concurrency_failed_cohort_limit", "1", 0, "Failed connection cohorts after which a destination is marked dead."),
	integer("default_process_limit", "100", 1, "Default master.cf maxproc when the column is -."),
	integer("smtp_destination_concurrency_limit", "$default_destination_concurrency_limit", 0, "Parallel deliveries to one destination by the smtp transport."),
	integer("smtp_destination_recipient_limit", "$default_destination_recipient_limit", 0, "Recipients per delivery by the smtp transport."),
	integer("local_destination_concurrency_limit", "2", 0, "Parallel deliveries to one local recipient."),
	integer("local_destination_recipient_limit", "1", 0, "Recipients per local delivery."),
	integer("relay_destination_concurrency_limit", "$default_destination_concurrency_limit", 0, "Parallel deliveries to one destination by the relay transport."),
	integer("relay_destination_recipient_limit", "$default_destination_recipient_limit", 0, "Recipients per delivery by the relay transport."),
	boolean("enable_long_queue_ids", "no", "Use long, non-repeating queue IDs."),

	// Notifications and addresses.
	str("bounce_notice_recipient", "postmaster", "Recipient of bounce notices for the bounce class of notify_classes."),
	str("2bounce_notice_recipient", "postmaster", "Recipient of undeliverable bounces."),
	list("notify_classes", "resource, software", "Problems reported to the postmaster.").enum("bounce", "2bounce", "data", "delay", "policy", "protocol", "resource", "software"),
	str("empty_address_recipient", "MAILER-DAEMON", "Recipient of mail addressed to <>."),
	str("double_bounce_sender", "double-bounce", "Sender address of postmaster notifications; mail to it is discarded."),

	// Address rewriting.
	boolean("append_dot_mydomain", "${{$compatibility_level} <level {1} ? {yes} : {no}}", "Append .$mydomain to user@host addresses without a dot in host."),
	boolean("append_at_myorigin", "yes", "Append @$myorigin to addresses without a domain."),
	boolean("swap_bangpath", "yes", "Rewrite site!user to user@site."),

	// yubin cluster and operations.
	str("yubin_node_name", "$myhostname", "This node's name in the cluster; unique per node.").yubin().checked(checkNodeName),
	str("yubin_cluster_address", "", "host:port of the cluster listener (raft and node-to-node messages); empty means a single node without a cluster listener.").yubin().checked(checkOptionalHostPort),
	list("yubin_cluster_peers", "", "All initial voters as name=host:port elements, this node included; a node not listed joins the existing cluster.").yubin().checked(checkPeers),
	str("yubin_cluster_secret", "", "Shared secret that authenticates cluster members; required when yubin_cluster_address is set.").yubin(),
	str("yubin_control_socket", "$data_directory/control.sock", "Unix socket the mailq/postqueue/postsuper commands use to reach the running node.").yubin(),
	str("yubin_raft_directory", "$data_directory/raft", "Directory of the raft log, stable store and snapshots.").yubin(),
	str("yubin_admin_group", "", "Group whose members may use the control socket (mailq, postsuper, ...) besides root and the node's user; others submit through the maildrop.").yubin(),
	str("yubin_metrics_address", "127.0.0.1:9025", "host:port of the Prometheus /metrics listener; empty disables it.").yubin().checked(checkOptionalHostPort),

	// Delivery spread across cluster nodes (docs/cluster.md).
	str("yubin_delivery_nodes", "all", "Which cluster nodes run deliveries: all (every live voter; the leader hands out the jobs and keeps every limit cluster-wide) or leader (only the leader).").yubin().enum("all", "leader"),
	str("yubin_transport_nodes", "", "Nodes a master.cf transport may deliver on, as transport=node,node elements separated by whitespace, e.g. local=mx1 virtual=mx1,mx2; transports not listed run on any delivery node.").yubin().checked(func(v string) error { _, err := ParseTransportNodes(v); return err }),
	str("yubin_delivery_preference", "other-node-on-retry", "Node for the next attempt of a deferred message: other-node-on-retry (one other than the node that made the deferred attempt, when there is one) or none.").yubin().enum("other-node-on-retry", "none"),
}

// postfixOnly are common Postfix parameters that yubin recognizes but does
// not implement: they get a specific warning instead of "unused parameter".
var postfixOnly = map[string]bool{
	"command_directory": true, "daemon_directory": true, "meta_directory": true,
	"shlib_directory": true, "html_directory": true, "manpage_directory": true,
	"readme_directory": true, "sample_directory": true, "mail_owner": true,
	"setgid_group": true, "debug_peer_level": true, "debug_peer_list": true,
	"debugger_command": true, "smtp_tls_CApath": true, "smtpd_tls_CApath": true,
	"smtpd_tls_CAfile": true, "smtp_tls_session_cache_database": true,
	"smtpd_tls_session_cache_database": true, "smtpd_tls_loglevel": true,
	"smtp_tls_loglevel": true, "smtpd_tls_received_header": true,
	"tls_random_source": true, "smtputf8_enable": true, "mailbox_transport": true,
	"fallback_transport": true, "luser_relay": true, "smtpd_milters": true,
	"non_smtpd_milters": true, "milter_default_action": true, "milter_protocol": true,
	"smtpd_tls_mandatory_protocols": true, "smtpd_tls_protocols": true,
	"smtp_tls_mandatory_protocols": true, "smtp_tls_protocols": true,
	"content_filter": true, "header_checks": true, "body_checks": true,
	"postscreen_access_list": true, "postscreen_dnsbl_sites": true,
	"smtpd_tls_dh1024_param_file": true, "smtpd_use_tls": true, "smtp_use_tls": true,
	"inet_interfaces_warning": true, "default_database_type": true,
}

func checkOneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		quoted := make([]string, len(values))
		for i, ok := range values {
			quoted[i] = strconv.Quote(ok)
		}
		return fmt.Errorf("must be one of %s", strings.Join(quoted, ", "))
	}
}

func checkLevel(v string) error {
	_, err := parseLevel(v)
	return err
}

func checkInterfaces(v string) error {
	elems := SplitList(v)
	if len(elems) == 0 {
		return fmt.Errorf("empty; use all, loopback-only or addresses")
	}
	for _, e := range elems {
		if e == "all" || e == "loopback-only" {
			if len(elems) > 1 {
				return fmt.Errorf("%s cannot be combined with other addresses", e)
			}
			continue
		}
		if strings.ContainsAny(e, "/$") {
			return fmt.Errorf("bad address %q", e)
		}
	}
	return nil
}

func checkOptionalIP(v string) error {
	if v == "" || net.ParseIP(strings.Trim(v, "[]")) != nil {
		return nil
	}
	return fmt.Errorf("not an IP address")
}

func checkOptionalHostPort(v string) error {
	if v == "" {
		return nil
	}
	return checkHostPort(v)
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if port == "" || strings.ContainsAny(host, " /") {
		return fmt.Errorf("want host:port")
	}
	if _, err := parseUint(port, 65535); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

func checkDNSServers(v string) error {
	for _, e := range SplitList(v) {
		if net.ParseIP(strings.Trim(e, "[]")) != nil {
			continue
		}
		if err := checkHostPort(e); err != nil {
			return fmt.Errorf("bad server %q: %w", e, err)
		}
	}
	return nil
}

func checkNodeName(v string) error {
	if v == "" {
		return fmt.Errorf("empty node name")
	}
	if strings.ContainsAny(v, " \t=,") {
		return fmt.Errorf("node name must not contain whitespace, = or ,")
	}
	return nil
}

func checkPeers(v string) error {
	seen := map[string]bool{}
	for _, e := range SplitList(v) {
		name, addr, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return fmt.Errorf("peer %q: want name=host:port", e)
		}
		if seen[name] {
			return fmt.Errorf("peer %q listed twice", name)
		}
		seen[name] = true
		if err := checkHostPort(addr); err != nil {
			return fmt.Errorf("peer %q: %w", name, err)
		}
	}
	return nil
}

// checkNetwork accepts a mynetworks element: an address or network in CIDR
// form (IPv6 optionally in brackets, "[::1]/128"), a type:table, either
// possibly negated with "!".
func checkNetwork(e string) error {
	e = strings.TrimPrefix(e, "!")
	if i := strings.IndexByte(e, ':'); i > 0 && !strings.HasPrefix(e, "[") && net.ParseIP(strings.Split(e, "/")[0]) == nil {
		return nil // type:table
	}
	addr, bits, hasBits := strings.Cut(e, "/")
	if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
		addr = addr[1 : len(addr)-1]
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return fmt.Errorf("%q is not an address or network", e)
	}
	if hasBits {
		max := uint64(32)
		if strings.Contains(addr, ":") { // IPv6 notation, also for ::ffff:1.2.3.4
			max = 128
		}
		if _, err := parseUint(bits, max); err != nil {
			return fmt.Errorf("%q: bad prefix length", e)
		}
	}
	return nil
}

// ParseTransportNodes parses yubin_transport_nodes: whitespace separated
// transport=node,node elements. A blank or comma between node names is
// accepted too, since node names contain neither '=' nor ','. The result
// maps a master.cf service name to the nodes it may deliver on.
func ParseTransportNodes(v string) (map[string][]string, error) {
	out := map[string][]string{}
	current := ""
	for _, tok := range SplitList(v) {
		transport, node, isNew := strings.Cut(tok, "=")
		if isNew {
			if transport == "" {
				return nil, fmt.Errorf("%q: missing transport name before '='", tok)
			}
			if _, dup := out[transport]; dup {
				return nil, fmt.Errorf("transport %q listed twice", transport)
			}
			current = transport
			out[current] = nil
		} else {
			node = tok
		}
		if current == "" {
			return nil, fmt.Errorf("%q: want transport=node,node", tok)
		}
		if node == "" {
			continue
		}
		if err := checkNodeName(node); err != nil {
			return nil, fmt.Errorf("transport %q: %w", current, err)
		}
		out[current] = append(out[current], node)
	}
	for transport, nodes := range out {
		if len(nodes) == 0 {
			return nil, fmt.Errorf("transport %q: no node listed", transport)
		}
	}
	return out, nil
}
