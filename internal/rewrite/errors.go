package rewrite

import (
	"errors"
	"fmt"
)

// Error kinds; test with errors.Is. Every error this package returns for a
// recipient wraps exactly one of them (and, when a table or file failed,
// that failure too).
var (
	// ErrBadAddress: the address cannot be resolved (e.g. "user@" or a
	// domain that is not a valid host name or address literal).
	ErrBadAddress = errors.New("bad address")
	// ErrTable: a lookup table failed (not "not found": the table itself).
	// Temporary.
	ErrTable = errors.New("lookup table failure")
	// ErrUnknownUser: the recipient is in a virtual_alias_domains domain but
	// virtual_alias_maps has no entry for it.
	ErrUnknownUser = errors.New("user unknown in virtual alias table")
	// ErrNesting: virtual alias expansion went deeper than
	// virtual_alias_recursion_limit. Temporary, as in Postfix.
	ErrNesting = errors.New("virtual alias nesting too deep")
	// ErrExpansionSize: one recipient expanded into more addresses than
	// virtual_alias_expansion_limit (or than the absolute work cap).
	// Temporary, as in Postfix.
	ErrExpansionSize = errors.New("alias expansion too large")
	// ErrAliasLoop: aliases(5) expansion revisited an alias it is already
	// expanding, or nested deeper than 100 levels.
	ErrAliasLoop = errors.New("alias database loop")
	// ErrRestricted: an alias or :include: file names a |command or /file
	// that allow_mail_to_commands / allow_mail_to_files does not permit.
	ErrRestricted = errors.New("delivery to command or file is restricted")
	// ErrInclude: a :include: file is unusable (relative path, missing,
	// not a regular file, world writable, too large, unreadable).
	ErrInclude = errors.New(":include: file error")
	// ErrEmptyAlias: an alias entry has no usable target. Temporary, as
	// in Postfix (the table is probably being rebuilt).
	ErrEmptyAlias = errors.New("no recipient in alias lookup result")
)

// ExpandError describes why an address could not be expanded, with the
// enhanced status code and text Postfix uses for the same failure, so the
// caller can reply or bounce with it unchanged.
type ExpandError struct {
	Addr   string // the address (or alias name) being expanded
	Status string // RFC 3463 code, e.g. "5.1.1", "4.6.0"
	Text   string // human-readable reason, as Postfix words it
	Kind   error  // one of the Err* kinds above
	Err    error  // underlying failure, or nil
}

func (e *ExpandError) Error() string {
	msg := fmt.Sprintf("%s: %s %s", e.Addr, e.Status, e.Text)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the kind and the underlying failure to errors.Is/As.
func (e *ExpandError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Temporary reports whether the failure may go away by itself (4.x.x): the
// message should be deferred or the client told to try again later.
func (e *ExpandError) Temporary() bool { return len(e.Status) > 0 && e.Status[0] == '4' }

func expandErr(kind error, addr, status, text string, cause error) *ExpandError {
	return &ExpandError{Addr: addr, Status: status, Text: text, Kind: kind, Err: cause}
}
