package pipe

import (
	"fmt"
	"strings"
)

// macroNames are the pipe(8) argv macros. Client and SASL attributes are
// accepted and expand to "" because yubin's delivery request does not
// carry them.
var macroNames = map[string]bool{
	"sender": true, "recipient": true, "original_recipient": true,
	"user": true, "extension": true, "mailbox": true, "domain": true,
	"nexthop": true, "queue_id": true, "size": true,
	"client_address": true, "client_helo": true, "client_hostname": true,
	"client_port": true, "client_protocol": true,
	"sasl_method": true, "sasl_sender": true, "sasl_username": true,
}

// expand replaces $name, ${name} and $(name) in arg with value(name);
// "$$" is a literal "$". An unknown name is an error.
func expand(arg string, value func(name string) string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(arg) {
			return "", fmt.Errorf("%q: '$' at end of argument", arg)
		}
		var name string
		switch open := arg[i+1]; open {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{', '(':
			close := byte('}')
			if open == '(' {
				close = ')'
			}
			end := strings.IndexByte(arg[i+2:], close)
			if end < 0 {
				return "", fmt.Errorf("%q: missing %q", arg, close)
			}
			name = arg[i+2 : i+2+end]
			i += 2 + end
		default:
			j := i + 1
			for j < len(arg) && (arg[j] == '_' || arg[j] >= 'a' && arg[j] <= 'z' || arg[j] >= 'A' && arg[j] <= 'Z' || arg[j] >= '0' && arg[j] <= '9') {
				j++
			}
			name = arg[i+1 : j]
			i = j - 1
		}
		if !macroNames[name] {
			return "", fmt.Errorf("%q: unknown macro $%s", arg, name)
		}
		b.WriteString(value(name))
	}
	return b.String(), nil
}
