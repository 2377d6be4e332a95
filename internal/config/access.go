package config

import (
	"errors"
	"fmt"
	"math"
	"path"
	"time"
)

// Directory returns the configuration directory the Config was loaded from.
func (c *Config) Directory() string { return c.dir }

// Get returns the expanded value of name; "" for an unknown name.
func (c *Config) Get(name string) string {
	if v, ok := c.values[name]; ok {
		return v
	}
	v, err := newResolver(c.rawMain, nil).value(name)
	if err != nil {
		return ""
	}
	return v
}

// Raw returns the unexpanded value of name (from main.cf, else its default)
// and whether the parameter is defined at all.
func (c *Config) Raw(name string) (string, bool) {
	return c.rawMain(name)
}

// IsSet reports whether main.cf sets name.
func (c *Config) IsSet(name string) bool {
	_, ok := c.main[name]
	return ok
}

// Bool returns a yes/no parameter.
func (c *Config) Bool(name string) (bool, error) {
	v, err := c.defined(name)
	if err != nil {
		return false, err
	}
	b, err := ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("parameter %s = %q: %w", name, v, err)
	}
	return b, nil
}

// Int returns an integer parameter.
func (c *Config) Int(name string) (int, error) {
	v, err := c.defined(name)
	if err != nil {
		return 0, err
	}
	return intValue(name, v)
}

func intValue(name, v string) (int, error) {
	n, err := ParseInt(v)
	if err == nil && (n > math.MaxInt || n < math.MinInt) {
		err = errors.New("out of range")
	}
	if err != nil {
		return 0, fmt.Errorf("parameter %s = %q: %w", name, v, err)
	}
	return int(n), nil
}

// Duration returns a time parameter; a bare number uses the parameter's
// default unit (seconds for parameters not in the registry).
func (c *Config) Duration(name string) (time.Duration, error) {
	v, err := c.defined(name)
	if err != nil {
		return 0, err
	}
	return c.durationValue(name, v)
}

func (c *Config) durationValue(name, v string) (time.Duration, error) {
	p, _ := c.param(name)
	d, err := ParseDuration(v, p.unit())
	if err != nil {
		return 0, fmt.Errorf("parameter %s = %q: %w", name, v, err)
	}
	return d, nil
}

// Size returns a byte-count parameter.
func (c *Config) Size(name string) (int64, error) {
	v, err := c.defined(name)
	if err != nil {
		return 0, err
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("parameter %s = %q: %w", name, v, err)
	}
	return n, nil
}

// List returns a list parameter split on commas and whitespace. For
// parameters that accept /file/name elements, those are replaced by the
// file's contents as read at Load; type:table elements are returned as is.
func (c *Config) List(name string) []string {
	if l, ok := c.lists[name]; ok {
		return append([]string(nil), l...)
	}
	return SplitList(c.Get(name))
}

func (c *Config) defined(name string) (string, error) {
	if _, ok := c.rawMain(name); !ok {
		return "", fmt.Errorf("unknown parameter %s", name)
	}
	return c.Get(name), nil
}

// Services returns the master.cf services in file order.
func (c *Config) Services() []Service {
	out := make([]Service, len(c.services))
	for i := range c.services {
		out[i] = c.services[i].clone()
	}
	return out
}

// Service returns the service with the given name. When a name has both an
// inet and another entry (smtp), the non-inet one is returned: names are
// looked up as delivery transports.
func (c *Config) Service(name string) (Service, bool) {
	s := c.service(name)
	if s == nil {
		return Service{}, false
	}
	return s.clone(), true
}

func (c *Config) service(name string) *Service {
	var inet *Service
	for i := range c.services {
		s := &c.services[i]
		if s.Name != name {
			continue
		}
		if s.Type != "inet" {
			return s
		}
		inet = s
	}
	return inet
}

// InetListeners returns the listen addresses of all inet services: the
// service's own host:port, or its port on every inet_interfaces address.
func (c *Config) InetListeners() []Listener {
	out := make([]Listener, len(c.listeners))
	for i, l := range c.listeners {
		out[i] = Listener{Address: l.Address, Service: l.Service.clone()}
	}
	return out
}

// ServiceParam returns the expanded value of name for the service: its -o
// override if present, else the main.cf or default value. Values that refer
// to other parameters see the service's overrides, as in Postfix. An
// unknown service gives the main.cf value.
func (c *Config) ServiceParam(service, name string) string {
	s := c.service(service)
	if s == nil || len(s.Overrides) == 0 && !runtimeNames[name] {
		return c.Get(name)
	}
	v, err := newResolver(c.serviceRaw(s), nil).value(name)
	if err != nil {
		return "" // unreachable for names validated at Load
	}
	return v
}

// ServiceList is List with the -o overrides of a master.cf service: a list
// parameter split on commas and whitespace, with /file/name elements
// replaced by the file's contents for parameters that accept them.
func (c *Config) ServiceList(service, name string) []string {
	if s := c.service(service); s == nil || len(s.Overrides) == 0 {
		return c.List(name)
	}
	v := c.ServiceParam(service, name)
	if p, ok := c.param(name); ok && p.FileList {
		if l, err := expandFileList(v, 0); err == nil {
			return l
		}
	}
	return SplitList(v)
}

// TransportParam returns the effective per-transport scheduler parameter
// suffix (e.g. "destination_concurrency_limit") for transport: first a
// master.cf -o of TRANSPORT_suffix or COMMAND_suffix on that service (so
// "-o smtp_destination_concurrency_limit=1" on service docomo-smtp applies
// to docomo-smtp), then main.cf TRANSPORT_suffix, then its default
// ($default_destination_... or $initial_destination_concurrency).
func (c *Config) TransportParam(transport, suffix string) string {
	name := transport + "_" + suffix
	global, known := transportSuffixes[suffix]
	s := c.service(transport)
	if s != nil {
		for _, key := range []string{name, path.Base(s.Command) + "_" + suffix} {
			if _, ok := s.Overrides[key]; ok {
				return c.ServiceParam(transport, key)
			}
		}
		if _, ok := c.rawMain(name); ok {
			return c.ServiceParam(transport, name)
		}
	} else if _, ok := c.rawMain(name); ok {
		return c.Get(name)
	}
	if known {
		return c.ServiceParam(transport, global)
	}
	return ""
}

// TransportInt is TransportParam parsed as an integer.
func (c *Config) TransportInt(transport, suffix string) (int, error) {
	return intValue(transport+"_"+suffix, c.TransportParam(transport, suffix))
}

// TransportDuration is TransportParam parsed as a time value.
func (c *Config) TransportDuration(transport, suffix string) (time.Duration, error) {
	return c.durationValue("default_"+suffix, c.TransportParam(transport, suffix))
}

func (s Service) clone() Service {
	s.Args = append([]string(nil), s.Args...)
	if s.Overrides != nil {
		o := make(map[string]string, len(s.Overrides))
		for k, v := range s.Overrides {
			o[k] = v
		}
		s.Overrides = o
	}
	return s
}
