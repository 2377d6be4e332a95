package command

import "fmt"

// Exit is one <sysexits.h> status with Postfix's enhanced status code and
// text for it (global/sys_exits.c).
type Exit struct {
	Code int
	DSN  string
	Text string
}

// exBase and exMax bound the <sysexits.h> codes (EX__BASE, EX__MAX).
const (
	exBase = 64
	exMax  = 78
	// ExTempFail is EX_TEMPFAIL: the command asks to be retried later.
	ExTempFail = 75
)

var sysexits = [...]Exit{
	{64, "5.3.0", "command line usage error"},
	{65, "5.6.0", "data format error"},
	{66, "5.3.0", "cannot open input"},
	{67, "5.1.1", "user unknown"},
	{68, "5.1.2", "host name unknown"},
	{69, "5.3.0", "service unavailable"},
	{70, "5.3.0", "internal software error"},
	{71, "4.3.0", "system resource problem"},
	{72, "5.3.0", "critical OS file missing"},
	{73, "5.2.0", "can't create user output file"},
	{74, "5.3.0", "input/output error"},
	{75, "4.3.0", "temporary failure"},
	{76, "5.5.0", "remote error in protocol"},
	{77, "5.7.0", "permission denied"},
	{78, "5.3.5", "local configuration error"},
}

// IsSysexit reports whether code is one of the <sysexits.h> codes.
func IsSysexit(code int) bool { return code >= exBase && code <= exMax }

// SysexitDetail returns the table entry for code, or Postfix's generic
// "unknown mail system error N" with 5.3.0 for any other code.
func SysexitDetail(code int) Exit {
	if IsSysexit(code) {
		return sysexits[code-exBase]
	}
	return Exit{Code: code, DSN: "5.3.0", Text: fmt.Sprintf("unknown mail system error %d", code)}
}
