package config

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Service is one master.cf entry.
type Service struct {
	Name      string // service name; for inet: port, host:port or a name like smtp
	Type      string // inet, unix, unix-dgram, fifo or pass
	Private   bool
	Unpriv    bool
	Chroot    bool
	Wakeup    string // seconds, "0" for none; a trailing "?" means only after first use
	MaxProc   int    // 0 means no limit
	Command   string
	Args      []string          // command arguments other than -o overrides
	Overrides map[string]string // -o name=value, raw
	Line      int               // line of master.cf where the entry starts
}

// serviceTypes are the master.cf service types Postfix accepts.
var serviceTypes = map[string]bool{"inet": true, "unix": true, "unix-dgram": true, "fifo": true, "pass": true}

// wellKnownPorts resolves the service names admins write in master.cf
// without depending on /etc/services.
var wellKnownPorts = map[string]string{
	"smtp": "25", "submission": "587", "smtps": "465", "submissions": "465", "lmtp": "24",
}

// DefaultMasterCF is used when the configuration directory has no
// master.cf: the services of Postfix's stock master.cf that yubin runs.
const DefaultMasterCF = `# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       n       -       -       smtpd
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
`

// ParseMasterCF parses master.cf syntax. file names the input in errors;
// defaultProcessLimit is used for a maxproc of "-". Comment, blank and
// continuation lines follow the same rules as main.cf. A later entry with
// the same name and type replaces an earlier one, with a warning.
func ParseMasterCF(r io.Reader, file string, defaultProcessLimit int) ([]Service, []Warning, error) {
	lines, warns, err := readLogicalLines(r, file)
	if err != nil {
		return nil, nil, err
	}
	var services []Service
	index := map[string]int{}
	for _, l := range lines {
		s, err := parseServiceLine(l.text, defaultProcessLimit)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", file, l.line, err)
		}
		s.Line = l.line
		key := s.Name + "/" + s.Type
		if i, dup := index[key]; dup {
			warns = append(warns, Warning{File: file, Line: l.line,
				Message: fmt.Sprintf("duplicate service %s replaces the entry at line %d", key, services[i].Line)})
			services[i] = s
			continue
		}
		index[key] = len(services)
		services = append(services, s)
	}
	return services, warns, nil
}

func parseServiceLine(text string, defaultProcessLimit int) (Service, error) {
	fields := strings.Fields(text)
	names := []string{"service", "type", "private", "unpriv", "chroot", "wakeup", "maxproc", "command"}
	if len(fields) < len(names) {
		return Service{}, fmt.Errorf("missing %q field in %q", names[len(fields)], clip(text))
	}
	s := Service{Name: fields[0], Type: fields[1], Command: fields[7]}
	if !serviceTypes[s.Type] {
		return Service{}, fmt.Errorf("bad service type %q (want inet, unix, unix-dgram, fifo or pass)", s.Type)
	}
	var err error
	if s.Private, err = flagField("private", fields[2], true); err != nil {
		return Service{}, err
	}
	if s.Unpriv, err = flagField("unpriv", fields[3], true); err != nil {
		return Service{}, err
	}
	if s.Chroot, err = flagField("chroot", fields[4], false); err != nil {
		return Service{}, err
	}
	if s.Type == "inet" {
		if s.Private {
			return Service{}, fmt.Errorf("inet service %q cannot be private (set the private column to n)", s.Name)
		}
		if _, _, err := inetEndpoint(s.Name); err != nil {
			return Service{}, err
		}
	}
	if s.Wakeup, err = wakeupField(fields[5]); err != nil {
		return Service{}, err
	}
	if fields[6] == "-" {
		s.MaxProc = defaultProcessLimit
	} else {
		n, err := parseUint(fields[6], 1<<31-1)
		if err != nil {
			return Service{}, fmt.Errorf("field \"maxproc\": bad value %q (want -, 0 or a number)", fields[6])
		}
		s.MaxProc = int(n)
	}
	if s.Command == "-" {
		return Service{}, fmt.Errorf("field \"command\" has no default value")
	}
	args, err := commandArgs(text, len(names))
	if err != nil {
		return Service{}, err
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var setting string
		switch {
		case a == "-o":
			if i+1 == len(args) {
				return Service{}, fmt.Errorf("-o without name=value")
			}
			i++
			setting = args[i]
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			setting = a[2:]
		default:
			s.Args = append(s.Args, a)
			continue
		}
		name, value, ok := strings.Cut(setting, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return Service{}, fmt.Errorf("-o %q: want name=value", setting)
		}
		if s.Overrides == nil {
			s.Overrides = map[string]string{}
		}
		s.Overrides[name] = strings.TrimSpace(value)
	}
	return s, nil
}

func flagField(name, v string, def bool) (bool, error) {
	switch v {
	case "-":
		return def, nil
	case "y":
		return true, nil
	case "n":
		return false, nil
	}
	return false, fmt.Errorf("field %q: bad value %q (want y, n or -)", name, v)
}

func wakeupField(v string) (string, error) {
	if v == "-" {
		return "0", nil
	}
	digits := strings.TrimSuffix(v, "?")
	if _, err := parseUint(digits, 1<<31-1); err != nil {
		return "", fmt.Errorf("field \"wakeup\": bad value %q (want -, seconds or seconds?)", v)
	}
	return v, nil
}

// commandArgs returns the arguments after the first skip fields. A {...}
// group is one argument with surrounding whitespace removed, as in
// Postfix 3.0 and later: -o { smtpd_client_restrictions = permit, reject }.
func commandArgs(text string, skip int) ([]string, error) {
	i := 0
	for f := 0; f < skip; f++ {
		for i < len(text) && isBlank(text[i]) {
			i++
		}
		for i < len(text) && !isBlank(text[i]) {
			i++
		}
	}
	var args []string
	for {
		for i < len(text) && isBlank(text[i]) {
			i++
		}
		if i == len(text) {
			return args, nil
		}
		if text[i] == '{' {
			end := matchClose(text, i, '{', '}')
			if end < 0 {
				return nil, fmt.Errorf("missing '}' in argument %q", clip(text[i:]))
			}
			if end+1 < len(text) && !isBlank(text[end+1]) {
				return nil, fmt.Errorf("text after '}' in argument %q", clip(text[i:]))
			}
			args = append(args, strings.TrimSpace(text[i+1:end]))
			i = end + 1
			continue
		}
		start := i
		for i < len(text) && !isBlank(text[i]) {
			i++
		}
		args = append(args, text[start:i])
	}
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// inetEndpoint splits an inet service name into host (empty: all of
// inet_interfaces) and numeric port. Accepted: port, name, host:port,
// [v6addr]:port.
func inetEndpoint(name string) (host, port string, err error) {
	p := name
	if strings.HasPrefix(name, "[") {
		end := strings.Index(name, "]:")
		if end < 0 {
			return "", "", fmt.Errorf("bad inet service %q (want [address]:port)", name)
		}
		host, p = name[1:end], name[end+2:]
		if net.ParseIP(host) == nil {
			return "", "", fmt.Errorf("bad inet service %q: %q is not an IP address", name, host)
		}
	} else if i := strings.LastIndexByte(name, ':'); i >= 0 {
		host, p = name[:i], name[i+1:]
		if host == "" || strings.Contains(host, ":") {
			return "", "", fmt.Errorf("bad inet service %q (want host:port, [address]:port or port)", name)
		}
	}
	port, err = resolvePort(p)
	if err != nil {
		return "", "", fmt.Errorf("bad inet service %q: %w", name, err)
	}
	return host, port, nil
}

func resolvePort(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty port")
	}
	if n, err := parseUint(p, 65535); err == nil {
		if n == 0 {
			return "", fmt.Errorf("port 0")
		}
		return strconv.FormatUint(n, 10), nil
	}
	if port, ok := wellKnownPorts[p]; ok {
		return port, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := net.DefaultResolver.LookupPort(ctx, "tcp", p)
	if err != nil || n <= 0 {
		return "", fmt.Errorf("unknown service name %q", p)
	}
	return strconv.Itoa(n), nil
}
