package policy

import (
	"strings"

	"github.com/yubin-mta/yubin/internal/address"
	"github.com/yubin-mta/yubin/internal/lookup"
)

// partialKeys reports whether a table is indexed (hash:, texthash:,
// inline:, ...), where Postfix also looks up parent domains, shortened
// addresses and "user@". Pattern tables see only the full key.
func partialKeys(t lookup.Table) bool {
	name := strings.ToLower(t.Name())
	for _, p := range []string{"regexp:", "pcre:", "cidr:", "static:"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return true
}

// domainKeys: "a.b.example.com", then (for indexed tables) the parent
// domains "b.example.com", "example.com", "com"
// (parent_domain_matches_subdomains includes smtpd_access_maps).
func domainKeys(domain string, partial bool) []string {
	keys := []string{domain}
	if !partial || isAddressLiteral(domain) {
		return keys
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 || i == len(d)-1 {
			return keys
		}
		d = d[i+1:]
		keys = append(keys, d)
	}
}

// mailKeys: "user@domain", then "domain" and its parents, then "user@".
func mailKeys(addr string, partial bool) []string {
	addr = strings.ToLower(addr)
	keys := []string{addr}
	if !partial {
		return keys
	}
	local, domain := address.Split(addr)
	if domain != "" {
		keys = append(keys, domainKeys(domain, true)...)
	}
	return append(keys, local+"@")
}

// clientKeys: host name and parents (unless unknown), then the address and,
// for IPv4 in indexed tables, its shortened forms 1.2.3, 1.2, 1.
func (e *eval) clientKeys(t lookup.Table) []string {
	partial := partialKeys(t)
	var keys []string
	c := e.t.Client
	if c.Name != "" && c.Name != "unknown" {
		keys = domainKeys(strings.ToLower(c.Name), partial)
	}
	ip := c.Addr.Unmap()
	keys = append(keys, ip.String())
	if partial && ip.Is4() {
		s := ip.String()
		for i := strings.LastIndexByte(s, '.'); i > 0; i = strings.LastIndexByte(s, '.') {
			s = s[:i]
			keys = append(keys, s)
		}
	}
	return keys
}

func (e *eval) access(t lookup.Table, class replyClass, keys []string, warn bool) outcome {
	for _, key := range keys {
		value, found, err := t.Lookup(key)
		if err != nil {
			e.res.Events = append(e.res.Events, Event{Action: "warning", Text: t.Name() + " lookup error for \"" + key + "\": " + err.Error()})
			return e.decide(&Reply{Code: 451, DSN: "4.3.0", Text: "<" + e.t.subjectName(class) + ">: Temporary lookup failure"}, false)
		}
		if found {
			return e.action(t, key, value, class, warn)
		}
	}
	return dunno
}

// action applies an access(5) result.
func (e *eval) action(t lookup.Table, key, value string, class replyClass, warn bool) outcome {
	value = strings.TrimSpace(value)
	word, text, _ := strings.Cut(value, " ")
	text = strings.TrimSpace(text)
	codes := e.c.codes
	subject := "<" + e.t.subjectName(class) + ">: " + string(class)
	withDefault := func(def string) string {
		if text == "" {
			return def
		}
		return text
	}
	switch strings.ToUpper(word) {
	case "OK":
		return permit
	case "DUNNO":
		return dunno
	case "REJECT":
		dsn, msg := dsnFromText(codes.AccessReject, withDefault("Access denied"), dsnFor(codes.AccessReject, "5.7.1"))
		return e.decide(e.reply(codes.AccessReject, dsn, class, msg), warn)
	case "DEFER":
		dsn, msg := dsnFromText(codes.AccessDefer, withDefault("Access denied"), dsnFor(codes.AccessDefer, "4.7.1"))
		return e.decide(e.reply(codes.AccessDefer, dsn, class, msg), warn)
	case "DEFER_IF_REJECT":
		dsn, msg := dsnFromText(codes.Defer, withDefault("Service unavailable"), "4.7.1")
		e.deferIfReject = e.reply(codes.Defer, dsn, class, msg)
		return dunno
	case "DEFER_IF_PERMIT":
		dsn, msg := dsnFromText(codes.Defer, withDefault("Service unavailable"), "4.7.1")
		e.setDeferIfPermit(e.reply(codes.Defer, dsn, class, msg))
		return dunno
	case "HOLD":
		e.res.Hold = true
		e.res.Events = append(e.res.Events, Event{Action: "hold", Text: subject + " " + withDefault("triggers HOLD action")})
		return dunno
	case "DISCARD":
		e.res.Discard = true
		e.res.Events = append(e.res.Events, Event{Action: "discard", Text: subject + " " + withDefault("triggers DISCARD action")})
		return permit
	case "REDIRECT":
		if _, err := address.ParsePath("<" + text + ">"); err != nil || text == "" {
			return e.configError("%s: bad REDIRECT address %q for key %q", t.Name(), text, key)
		}
		e.res.Redirect = text
		e.res.Events = append(e.res.Events, Event{Action: "redirect", Text: subject + " triggers REDIRECT " + text})
		return dunno
	case "FILTER":
		e.res.Events = append(e.res.Events, Event{Action: "warning", Text: t.Name() + ": FILTER " + text + " is not supported; ignored"})
		return dunno
	case "PREPEND":
		if name, _, ok := strings.Cut(text, ":"); !ok || name == "" || strings.ContainsAny(name, " \t") {
			return e.configError("%s: bad PREPEND header %q for key %q", t.Name(), text, key)
		}
		e.res.Prepend = append(e.res.Prepend, text)
		return dunno
	case "WARN":
		e.res.Events = append(e.res.Events, Event{Action: "warn", Text: subject + " " + withDefault("triggers WARN action")})
		return dunno
	}
	if code, ok := replyCode(word); ok {
		dsn, msg := dsnFromText(code, withDefault("Access denied"), dsnFor(code, "5.7.1"))
		return e.decide(e.reply(code, dsn, class, msg), warn)
	}
	if allDigits(word) {
		return permit // Postfix: an all-numerical result means OK
	}
	// A restriction list: class names and restrictions without arguments.
	var steps []step
	for _, name := range SplitList(value) {
		name = strings.ToLower(name)
		if _, isClass := e.c.classes[name]; !simpleRestrictions[name] && !isClass {
			return e.configError("%s: unknown action %q for key %q", t.Name(), value, key)
		}
		steps = append(steps, step{name: name})
	}
	if e.depth >= maxDepth {
		return e.configError("%s: restriction nesting deeper than %d", t.Name(), maxDepth)
	}
	e.depth++
	defer func() { e.depth-- }()
	return e.runList(steps, class)
}

// replyCode parses a "4NN"/"5NN" access result.
func replyCode(word string) (int, bool) {
	if len(word) != 3 || (word[0] != '4' && word[0] != '5') || !allDigits(word) {
		return 0, false
	}
	return int(word[0]-'0')*100 + int(word[1]-'0')*10 + int(word[2]-'0'), true
}
