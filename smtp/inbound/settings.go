package inbound

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/yubin-mta/yubin/internal/maillog"
	"github.com/yubin-mta/yubin/internal/sasl"
	"github.com/yubin-mta/yubin/queue"
	"github.com/yubin-mta/yubin/smtp/policy"
)

// Queue accepts finished messages. Submit returns only once the message is
// committed (replicated); any error means the message is NOT queued.
type Queue interface {
	NewID() string
	Submit(ctx context.Context, m *queue.Message, body []byte) error
}

// Settings is everything the server needs, as plain values. Zero values
// take Postfix's defaults (see withDefaults).
type Settings struct {
	Hostname string // myhostname
	Banner   string // smtpd_banner, expanded: "mx.example.com ESMTP yubin"
	MyOrigin string // myorigin

	MessageSizeLimit int64 // message_size_limit, 10240000
	RecipientLimit   int   // smtpd_recipient_limit, 1000
	HopcountLimit    int   // hopcount_limit, 50
	HeaderSizeLimit  int   // header_size_limit, 102400
	// LineLengthLimit bounds a command line without its CRLF: 510, the
	// 512 octets of RFC 5321 4.5.3.1.4 (Postfix accepts up to 2048).
	LineLengthLimit int
	// TextLineLimit bounds a line of the message in DATA without its CRLF:
	// 998, the 1000 octets of RFC 5321 4.5.3.1.6; a longer line is refused
	// with 5xx. Negative: no limit (Postfix's behaviour).
	TextLineLimit    int
	Timeout          time.Duration // smtpd_timeout, 300s
	HardErrorLimit   int           // smtpd_hard_error_limit, 20
	SoftErrorLimit   int           // smtpd_soft_error_limit, 10
	ErrorSleepTime   time.Duration // smtpd_error_sleep_time, 1s; negative: no sleep
	JunkCommandLimit int           // smtpd_junk_command_limit, 100
	HeloRequired     bool          // smtpd_helo_required
	DisableVRFY      bool          // disable_vrfy_command
	DisableSMTPUTF8  bool          // smtputf8_enable = no

	// ForbidBareNewline: "yes" (the default; reject and disconnect),
	// "normalize" (bare LF becomes CRLF) or "no". In every mode DATA ends
	// only at <CR><LF>.<CR><LF>.
	ForbidBareNewline string
	// AllowUnauthPipelining turns off smtpd_forbid_unauth_pipelining.
	AllowUnauthPipelining bool
	// GreetPause waits this long before the greeting; a client talking
	// during it is disconnected (pre-greeting check).
	GreetPause time.Duration

	// AlwaysAddMissingHeaders is always_add_missing_headers. Otherwise
	// Message-Id: and Date: are added only for clients on the server's own
	// address (local_header_rewrite_clients = permit_inet_interfaces).
	AlwaysAddMissingHeaders bool

	// TLSConfig enables STARTTLS when set.
	TLSConfig *tls.Config
	// TLSRequired is smtpd_tls_security_level = encrypt: MAIL before
	// STARTTLS gets "530 5.7.0 Must issue a STARTTLS command first", and
	// AUTH needs TLS.
	TLSRequired bool

	// SASL enables AUTH PLAIN and LOGIN (smtpd_sasl_auth_enable) with
	// this verifier; nil leaves AUTH off.
	SASL sasl.Verifier
	// AllowPlaintextAuth offers and accepts AUTH without TLS. yubin sets
	// it only for an explicit smtpd_tls_auth_only = no: passwords never
	// cross the network in the clear by default.
	AllowPlaintextAuth bool
	// SASLAuthenticatedHeader is smtpd_sasl_authenticated_header: the
	// Received: header names the login ("(Authenticated sender: u)").
	SASLAuthenticatedHeader bool

	// Limits are the per-client anvil limits.
	Limits Limits

	Policy   *policy.Checker // nil: policy.DefaultConfig() without env
	Resolver policy.Resolver // client name lookups; nil: every client is "unknown"
	Log      *maillog.Logger
	// ServiceName is the log service name, "smtpd".
	ServiceName string
	// Service is the master.cf service name ("smtp", "submission") that
	// limit warnings name.
	Service string
	// Queued is called after a successful Submit; nil logs Postfix's qmgr
	// line "ID: from=<...>, size=N, nrcpt=N (queue active)".
	Queued func(m *queue.Message)
	// FreeSpace reports the bytes available to the queue; nil skips the
	// check. Below QueueMinFree, and below 1.5 × MessageSizeLimit (as
	// Postfix's smtpd requires), MAIL FROM is answered 452 4.3.1.
	FreeSpace    func() (int64, error)
	QueueMinFree int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limits are Postfix's anvil(8) limits per client address, counted per
// server (master.cf service).
type Limits struct {
	// ConnectionCount is smtpd_client_connection_count_limit: 0 means
	// Postfix's 50, negative means no limit.
	ConnectionCount int
	// The rates count events per TimeUnit; 0 means no limit.
	ConnectionRate  int // smtpd_client_connection_rate_limit
	MessageRate     int // smtpd_client_message_rate_limit
	RecipientRate   int // smtpd_client_recipient_rate_limit
	AuthFailureRate int // smtpd_client_auth_rate_limit: failed AUTH attempts
	// TimeUnit is anvil_rate_time_unit; 0 means 60s.
	TimeUnit time.Duration
	// Exceptions is smtpd_client_event_limit_exceptions (by default
	// $mynetworks): clients that no limit applies to.
	Exceptions *policy.Networks
}

// withDefaults fills in Postfix's defaults; problems that have a safe
// fallback are returned as warnings for the mail log.
func (s Settings) withDefaults() (Settings, []string) {
	var warnings []string
	if s.Hostname == "" {
		s.Hostname = "localhost"
		warnings = append(warnings, "myhostname is empty; using localhost")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if s.Banner == "" {
		s.Banner = s.Hostname + " ESMTP yubin"
	}
	if s.MyOrigin == "" {
		s.MyOrigin = s.Hostname
	}
	if s.MessageSizeLimit == 0 {
		s.MessageSizeLimit = 10240000
	}
	def(&s.RecipientLimit, 1000)
	def(&s.HopcountLimit, 50)
	def(&s.HeaderSizeLimit, 102400)
	def(&s.LineLengthLimit, 510)
	def(&s.TextLineLimit, 998)
	def(&s.HardErrorLimit, 20)
	def(&s.SoftErrorLimit, 10)
	def(&s.JunkCommandLimit, 100)
	if s.Timeout == 0 {
		s.Timeout = 300 * time.Second
	}
	if s.ErrorSleepTime == 0 {
		s.ErrorSleepTime = time.Second
	}
	switch s.ForbidBareNewline {
	case "":
		s.ForbidBareNewline = "yes"
	case "yes", "normalize", "no":
	default:
		warnings = append(warnings, fmt.Sprintf("smtpd_forbid_bare_newline: unknown value %q; using yes", s.ForbidBareNewline))
		s.ForbidBareNewline = "yes"
	}
	if s.ServiceName == "" {
		s.ServiceName = "smtpd"
	}
	if s.Service == "" {
		s.Service = "smtp"
	}
	def(&s.Limits.ConnectionCount, 50)
	if s.Limits.TimeUnit <= 0 {
		s.Limits.TimeUnit = 60 * time.Second
	}
	if s.Log == nil {
		s.Log = maillog.Discard()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Policy == nil {
		p, err := policy.New(policy.DefaultConfig())
		if err != nil {
			// The default configuration has no tables; this cannot fail.
			warnings = append(warnings, "default policy: "+err.Error())
		}
		s.Policy = p
	}
	return s, warnings
}
