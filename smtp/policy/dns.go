package policy

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/yubin-mta/yubin/internal/dnsres"
)

// Resolver is the DNS access the checks need; *dnsres.Resolver satisfies
// it. Errors are classified with dnsres.IsNotFound and dnsres.IsTemporary.
type Resolver interface {
	LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error)
	LookupHost(ctx context.Context, host string) ([]netip.Addr, error)
	LookupMX(ctx context.Context, domain string) ([]dnsres.MX, error)
}

// maxPTRNames bounds forward confirmation work for one client.
const maxPTRNames = 4

// ClientName returns the forward-confirmed host name of ip, the way Postfix
// sets client_name: a PTR name whose A/AAAA records include ip, else
// "unknown". tempFail is set when a lookup failed temporarily.
func ClientName(ctx context.Context, r Resolver, ip netip.Addr) (name string, tempFail bool) {
	if r == nil {
		return "unknown", false
	}
	ip = ip.Unmap()
	names, err := r.LookupPTR(ctx, ip)
	if err != nil {
		return "unknown", dnsres.IsTemporary(err) && !dnsres.IsNotFound(err)
	}
	for i, n := range names {
		if i >= maxPTRNames {
			break
		}
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if !validHostname(n) {
			continue
		}
		addrs, err := r.LookupHost(ctx, n)
		if err != nil {
			if dnsres.IsTemporary(err) && !dnsres.IsNotFound(err) {
				tempFail = true
			}
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == ip {
				return n, false
			}
		}
	}
	return "unknown", tempFail
}

// domainState is the outcome of a "does this mail domain exist" check.
type domainState int

const (
	domainOK domainState = iota
	domainUnknown
	domainNullMX
	domainTempFail
)

// mailDomain checks that domain has an MX or an address record.
func (e *eval) mailDomain(domain string) domainState {
	r := e.c.cfg.Resolver
	mx, err := r.LookupMX(e.ctx, domain)
	switch {
	case err == nil && len(mx) > 0:
		return domainOK
	case errors.Is(err, dnsres.ErrNullMX):
		return domainNullMX
	case err != nil && !dnsres.IsNotFound(err):
		return domainTempFail
	}
	addrs, err := r.LookupHost(e.ctx, domain)
	switch {
	case err == nil && len(addrs) > 0:
		return domainOK
	case err != nil && !dnsres.IsNotFound(err):
		return domainTempFail
	}
	return domainUnknown
}

// unknownDomain implements reject_unknown_sender_domain and
// reject_unknown_recipient_domain.
func (e *eval) unknownDomain(addr string, class replyClass, tempDSN, permDSN string, warn bool) outcome {
	if addr == "" {
		return dunno
	}
	_, domain, _ := routedAddress(addr)
	if domain == "" || isAddressLiteral(domain) || ClassOf(e.c.cfg.Env, domain) != ClassDefault {
		return dunno
	}
	code := e.c.codes.UnknownAddress
	switch e.mailDomain(domain) {
	case domainUnknown:
		dsn := permDSN
		if code/100 == 4 {
			dsn = tempDSN
		}
		return e.decide(e.reply(code, dsn, class, "Domain not found"), warn)
	case domainNullMX:
		return e.decide(e.reply(556, "5.1.10", class, "Domain "+domain+" does not accept mail (nullMX)"), warn)
	case domainTempFail:
		// unknown_address_tempfail_action = defer_if_permit
		e.setDeferIfPermit(e.reply(450, tempDSN, class, "Domain not found"))
	}
	return dunno
}

// unknownClient implements reject_unknown_client_hostname.
func (e *eval) unknownClient(warn bool) outcome {
	c := e.t.Client
	if c.Name != "" && c.Name != "unknown" {
		return dunno
	}
	text := "Client host rejected: cannot find your hostname, [" + c.Addr.Unmap().String() + "]"
	if c.NameTempFail {
		e.setDeferIfPermit(&Reply{Code: 450, DSN: "4.7.1", Text: text})
		return dunno
	}
	code := e.c.codes.UnknownClient
	return e.decide(&Reply{Code: code, DSN: dsnFor(code, "4.7.1"), Text: text}, warn)
}
