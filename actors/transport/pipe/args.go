package pipe

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options are one pipe service's master.cf command attributes.
type Options struct {
	// Service is the master.cf service name (e.g. "maildrop"); it is the
	// relay= name and appears in "delivered via maildrop service".
	Service string
	// User is user=: "name" or "name:group". Root is refused.
	User string
	// Argv is argv=: the command and its arguments, with macros.
	Argv []string
	// Flags is flags=, a string of BDFORXhqu.> letters.
	Flags string
	// Size is size=: larger messages bounce (0 means no limit).
	Size int64
	// EOL is eol= after escape processing (default "\n").
	EOL string
	// NullSender is null_sender=; nil means "MAILER-DAEMON".
	NullSender *string
	// Directory is directory=, the working directory (default "/").
	Directory string
	// TimeLimit is transport_time_limit (default command_time_limit).
	TimeLimit time.Duration
	// RecipientDelimiter is recipient_delimiter, for ${user} and
	// ${extension}.
	RecipientDelimiter string
}

// ParseArgs parses the attributes after "pipe" in a master.cf entry, e.g.
//
//	flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient}
//
// Everything after argv= is the command. An argument may be grouped in
// "{ }" to contain spaces, either as one element or spread over several.
func ParseArgs(service string, args []string) (Options, error) {
	o := Options{Service: service}
	for i := 0; i < len(args); i++ {
		name, value, ok := strings.Cut(args[i], "=")
		if !ok {
			return o, fmt.Errorf("pipe service %s: attribute %q is not name=value", service, args[i])
		}
		switch name {
		case "argv":
			argv, err := groupBraces(append([]string{value}, args[i+1:]...))
			if err != nil {
				return o, fmt.Errorf("pipe service %s: argv: %w", service, err)
			}
			if len(argv) == 0 || argv[0] == "" {
				return o, fmt.Errorf("pipe service %s: empty argv", service)
			}
			o.Argv = argv
			i = len(args)
		case "flags":
			o.Flags = value
		case "user":
			o.User = value
		case "size":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return o, fmt.Errorf("pipe service %s: bad size %q", service, value)
			}
			o.Size = n
		case "eol":
			eol, err := unescape(value)
			if err != nil {
				return o, fmt.Errorf("pipe service %s: eol: %w", service, err)
			}
			o.EOL = eol
		case "null_sender":
			v := value
			o.NullSender = &v
		case "directory":
			o.Directory = value
		case "chroot":
			return o, fmt.Errorf("pipe service %s: chroot= is not supported", service)
		default:
			return o, fmt.Errorf("pipe service %s: unknown attribute %q", service, name)
		}
	}
	if o.Argv == nil {
		return o, fmt.Errorf("pipe service %s: missing argv= attribute", service)
	}
	if o.User == "" {
		return o, fmt.Errorf("pipe service %s: missing user= attribute", service)
	}
	return o, nil
}

// groupBraces joins "{ a b }" spread over several elements into one
// argument "a b", and strips braces from a single "{a b}" element.
func groupBraces(in []string) ([]string, error) {
	var out []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if !strings.HasPrefix(a, "{") {
			out = append(out, a)
			continue
		}
		parts := []string{a}
		for !strings.HasSuffix(parts[len(parts)-1], "}") {
			i++
			if i >= len(in) {
				return nil, fmt.Errorf("missing '}' after %q", a)
			}
			parts = append(parts, in[i])
		}
		joined := strings.Join(parts, " ")
		out = append(out, strings.TrimSpace(joined[1:len(joined)-1]))
	}
	return out, nil
}

// unescape processes the C escapes eol= accepts: \a \b \f \n \r \t \v
// \ddd and \\.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", fmt.Errorf("trailing backslash in %q", s)
		}
		switch c = s[i]; c {
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '\\':
			b.WriteByte('\\')
		default:
			if c < '0' || c > '7' {
				return "", fmt.Errorf("unknown escape \\%c in %q", c, s)
			}
			n := 0
			for j := 0; j < 3 && i < len(s) && s[i] >= '0' && s[i] <= '7'; j++ {
				n = n*8 + int(s[i]-'0')
				i++
			}
			i--
			if n > 255 {
				return "", fmt.Errorf("octal escape out of range in %q", s)
			}
			b.WriteByte(byte(n))
		}
	}
	return b.String(), nil
}
