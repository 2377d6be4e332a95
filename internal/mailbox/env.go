package mailbox

import (
	"bufio"
	"os"
	"strings"
)

// CommandExpansionFilter is Postfix's default command_expansion_filter:
// the characters allowed in values exported to a delivery command's
// environment; others become "_".
const CommandExpansionFilter = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// FilterValue replaces every character of v not in allowed with "_", so a
// crafted address cannot smuggle shell syntax into a command.
func FilterValue(v, allowed string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && strings.ContainsRune(allowed, r) {
			return r
		}
		return '_'
	}, v)
}

// ExportEnvironment returns NAME=value for each name in names that is set
// in this process's environment (Postfix's export_environment, default
// "TZ MAIL_CONFIG LANG").
func ExportEnvironment(names []string) []string {
	var env []string
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// DefaultExportEnvironment returns export_environment's default.
func DefaultExportEnvironment() []string { return []string{"TZ", "MAIL_CONFIG", "LANG"} }

// PasswdShell returns the login shell of name from the passwd file at
// path (normally /etc/passwd), or "" when the user is not listed there.
// os/user does not expose the shell, which local(8) exports as SHELL.
func PasswdShell(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 7 && fields[0] == name {
			return fields[6]
		}
	}
	return ""
}
