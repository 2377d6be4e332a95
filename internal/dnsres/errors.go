package dnsres

import (
	"errors"
	"fmt"
)

// ErrNullMX is reported (through errors.Is) when a domain publishes the
// RFC 7505 null MX record: it explicitly accepts no mail.
var ErrNullMX = errors.New("domain does not accept mail (null MX)")

// Kind classifies a lookup failure.
type Kind int

// Lookup failure kinds. NXDomain, NoData and NullMX are permanent; the rest
// are temporary, so mail is deferred rather than bounced.
const (
	// NXDomain: the name does not exist (RCODE 3).
	NXDomain Kind = iota + 1
	// NoData: the name exists but has no records of the asked type.
	NoData
	// NullMX: the domain's only MX is "." (RFC 7505).
	NullMX
	// ServFail: the server reported SERVFAIL, REFUSED or another error RCODE.
	ServFail
	// Timeout: no server answered in time.
	Timeout
	// Network: the query could not be sent or the answer not received.
	Network
	// Malformed: the answer could not be used (CNAME loop, bad record).
	Malformed
)

func (k Kind) String() string {
	switch k {
	case NXDomain:
		return "NXDOMAIN"
	case NoData:
		return "NODATA"
	case NullMX:
		return "null MX"
	case ServFail:
		return "SERVFAIL"
	case Timeout:
		return "timeout"
	case Network:
		return "network error"
	case Malformed:
		return "malformed reply"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is the error every lookup method returns.
type Error struct {
	Name string // the name that was looked up, without the trailing dot
	Type string // query type: "MX", "A", "AAAA", "PTR", "TXT", "TLSA"
	Kind Kind
	Err  error // underlying cause, may be nil
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("dns lookup %s %s: %s", e.Type, e.Name, e.Kind)
	if e.Err != nil && !errors.Is(e.Err, ErrNullMX) {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause (ErrNullMX for a null MX).
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether retrying later may succeed.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case NXDomain, NoData, NullMX:
		return false
	}
	return true
}

// HostErrorText is the resolver error text Postfix uses after
// "Name service error for name=... type=...:".
func (e *Error) HostErrorText() string {
	switch e.Kind {
	case NXDomain:
		return "Host not found"
	case NoData:
		return "No address associated with hostname"
	case NullMX:
		return "Domain does not accept mail (nullMX)"
	case Malformed:
		return "Malformed or unexpected name server reply"
	}
	return "Host not found, try again"
}

// IsTemporary reports whether err is a lookup failure worth retrying:
// SERVFAIL, timeouts, network errors. Errors that are not *Error count as
// temporary, because not knowing must not bounce mail.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var de *Error
	if errors.As(err, &de) {
		return de.Temporary()
	}
	return true
}

// IsNotFound reports whether err says the name or the record type does not
// exist (NXDOMAIN or NODATA). A null MX is not "not found": see ErrNullMX.
func IsNotFound(err error) bool {
	var de *Error
	return errors.As(err, &de) && (de.Kind == NXDomain || de.Kind == NoData)
}

// IsNXDomain reports whether err says the name does not exist at all.
func IsNXDomain(err error) bool {
	var de *Error
	return errors.As(err, &de) && de.Kind == NXDomain
}
