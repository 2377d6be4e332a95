package inbound

import (
	"github.com/yubin-mta/yubin/smtp/inbound/anvil"
)

// checkConnectLimits applies smtpd_client_connection_count_limit and
// smtpd_client_connection_rate_limit with Postfix's reply and warning.
// The connection is counted even when refused; onDisconnect uncounts it.
func (st *connState) checkConnectLimits() error {
	srv := st.srv
	lim := srv.s.Limits
	if st.exempt || !st.client.Addr.IsValid() {
		return nil
	}
	count, rate := srv.anvil.Connect(st.client.Addr)
	st.anvilCounted = true
	var what string
	var n int
	switch {
	case lim.ConnectionCount > 0 && count > lim.ConnectionCount:
		what, n = "Connection concurrency limit exceeded", count
	case lim.ConnectionRate > 0 && rate > lim.ConnectionRate:
		what, n = "Connection rate limit exceeded", rate
	default:
		return nil
	}
	srv.logf("warning: %s: %d from %s for service %s", what, n, st.client.NameAddr(), srv.s.Service)
	st.quit = true // refused on purpose, not a lost connection
	return reply(421, "4.7.0", srv.s.Hostname+" Error: too many connections from "+st.client.Addr.String())
}

// checkRate counts one MAIL or RCPT against its rate limit; over the limit
// the command gets Postfix's 450 4.7.1.
func (st *connState) checkRate(e anvil.Event) error {
	srv := st.srv
	lim := srv.s.Limits
	limit, what, text := 0, "", ""
	switch e {
	case anvil.Message:
		limit, what, text = lim.MessageRate, "Message delivery request rate limit exceeded", "Error: too much mail from "
	case anvil.Recipient:
		limit, what, text = lim.RecipientRate, "Recipient address rate limit exceeded", "Error: too many recipients from "
	}
	if limit <= 0 || st.exempt || !st.client.Addr.IsValid() {
		return nil
	}
	if n := srv.anvil.Add(st.client.Addr, e); n > limit {
		srv.logf("warning: %s: %d from %s for service %s", what, n, st.client.NameAddr(), srv.s.Service)
		return reply(450, "4.7.1", text+st.client.Addr.String())
	}
	return nil
}
