package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultDirectory is the configuration directory used when neither -c nor
// $MAIL_CONFIG names one.
const DefaultDirectory = "/etc/yubin"

// runtimeNames are read-only parameters that exist while a service runs.
// They expand to empty outside a service (stress is never set by yubin).
var runtimeNames = map[string]bool{
	"service_name": true, "process_name": true, "process_id": true, "stress": true,
}

// Config is a loaded configuration. It is immutable and safe for concurrent
// use.
type Config struct {
	dir        string
	mainFile   string
	masterFile string
	entries    []Entry          // effective main.cf entries in file order
	main       map[string]Entry // name -> effective entry
	derived    map[string]string
	services   []Service
	serviceSet map[string]bool     // names of master.cf services
	values     map[string]string   // expanded main-context values
	lists      map[string][]string // FileList parameters with files read
	listeners  []Listener
	used       map[string]bool // names referenced by values or restriction classes
}

// environment is what Load needs from the machine; tests replace it.
type environment struct {
	hostname       func() (string, error)
	interfaceAddrs func() ([]net.Addr, error)
}

var systemEnvironment = environment{hostname: os.Hostname, interfaceAddrs: net.InterfaceAddrs}

// Load reads dir/main.cf (absent: all defaults) and dir/master.cf (absent:
// DefaultMasterCF), expands and validates every value and returns the
// configuration with warnings such as unused parameters. Errors name the
// file and line.
func Load(dir string) (*Config, []Warning, error) {
	return load(dir, systemEnvironment)
}

// LoadFromEnv loads the directory chosen by Directory.
func LoadFromEnv(flagDir string) (*Config, []Warning, error) {
	return Load(Directory(flagDir))
}

// Directory returns the configuration directory: flagDir (-c) if set, else
// $MAIL_CONFIG if set, else DefaultDirectory.
func Directory(flagDir string) string {
	if flagDir != "" {
		return flagDir
	}
	if env := os.Getenv("MAIL_CONFIG"); env != "" {
		return env
	}
	return DefaultDirectory
}

func load(dir string, env environment) (*Config, []Warning, error) {
	if dir == "" {
		return nil, nil, errors.New("config: empty configuration directory")
	}
	// Absolute, so that $config_directory/... stays valid whatever the
	// working directory of the process that uses it.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("config directory: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("config directory: %w", err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("config directory %s: not a directory", dir)
	}
	c := &Config{
		dir:        dir,
		mainFile:   filepath.Join(dir, "main.cf"),
		masterFile: filepath.Join(dir, "master.cf"),
		main:       map[string]Entry{},
		derived:    map[string]string{"config_directory": dir},
		serviceSet: map[string]bool{},
	}
	var warns []Warning

	mainText, err := readOptional(c.mainFile)
	if err != nil {
		return nil, nil, err
	}
	entries, w, err := ParseMainCF(bytes.NewReader(mainText), c.mainFile)
	if err != nil {
		return nil, nil, err
	}
	warns = append(warns, w...)
	for _, e := range entries {
		c.main[e.Name] = e
	}
	for _, e := range entries {
		if c.main[e.Name].Line == e.Line {
			c.entries = append(c.entries, e)
		}
	}

	if err := c.deriveDefaults(env); err != nil {
		return nil, nil, err
	}

	// maxproc "-" needs default_process_limit before master.cf is parsed.
	procLimit, err := c.validatedInt("default_process_limit")
	if err != nil {
		return nil, nil, err
	}
	masterText, err := readOptional(c.masterFile)
	if err != nil {
		return nil, nil, err
	}
	masterName := c.masterFile
	if masterText == nil {
		masterText, masterName = []byte(DefaultMasterCF), "built-in master.cf"
	}
	services, w, err := ParseMasterCF(bytes.NewReader(masterText), masterName, procLimit)
	if err != nil {
		return nil, nil, err
	}
	warns = append(warns, w...)
	c.services = services
	for _, s := range services {
		c.serviceSet[s.Name] = true
	}

	w, err = c.expandAndValidate()
	if err != nil {
		return nil, nil, err
	}
	warns = append(warns, w...)
	w, err = c.validateServices(masterName)
	if err != nil {
		return nil, nil, err
	}
	warns = append(warns, w...)
	c.used = c.usedNames()
	warns = append(warns, c.unusedWarnings(masterName)...)
	c.listeners = inetListeners(c.services, c.values["inet_interfaces"], c.values["inet_protocols"])
	return c, warns, nil
}

// readOptional returns the file's contents, or nil if it does not exist.
func readOptional(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// deriveDefaults computes the defaults that depend on the machine or on
// other parameters: myhostname, mydomain and mynetworks.
func (c *Config) deriveDefaults(env environment) error {
	host, err := env.hostname()
	if err != nil {
		return fmt.Errorf("default myhostname: %w", err)
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		host = "localhost"
	}
	if !strings.Contains(host, ".") {
		// Like Postfix: qualify with $mydomain when main.cf sets it.
		domain := "localdomain"
		if _, set := c.main["mydomain"]; set {
			v, err := newResolver(c.rawMain, nil).value("mydomain")
			if err != nil {
				return c.errorAt("mydomain", err)
			}
			if v != "" {
				domain = v
			}
		}
		host += "." + domain
	}
	c.derived["myhostname"] = host

	myhostname, err := newResolver(c.rawMain, nil).value("myhostname")
	if err != nil {
		return c.errorAt("myhostname", err)
	}
	c.derived["mydomain"] = "localdomain"
	if _, rest, ok := strings.Cut(myhostname, "."); ok && rest != "" {
		c.derived["mydomain"] = rest
	}

	// Broken mynetworks_style or inet_protocols values are reported with
	// their own line by validation; the derived default is then unused.
	r := newResolver(c.rawMain, nil)
	style, err1 := r.value("mynetworks_style")
	protos, err2 := r.value("inet_protocols")
	if err1 != nil || err2 != nil {
		return nil
	}
	addrs, err := env.interfaceAddrs()
	if err != nil {
		if _, set := c.main["mynetworks"]; !set {
			return fmt.Errorf("default mynetworks: list interface addresses: %w", err)
		}
	}
	c.derived["mynetworks"] = defaultMynetworks(style, protos, addrs)
	return nil
}

// param returns the description of a known parameter: a registry entry or
// a per-transport parameter of a master.cf service.
func (c *Config) param(name string) (Param, bool) {
	if p, ok := registry[name]; ok {
		return p, true
	}
	for suffix := range transportSuffixes {
		if t, ok := strings.CutSuffix(name, "_"+suffix); ok && c.serviceSet[t] {
			return transportParam(t, suffix)
		}
	}
	return Param{}, false
}

// defaultRaw returns a known parameter's raw default.
func (c *Config) defaultRaw(name string) (string, bool) {
	p, ok := c.param(name)
	if !ok {
		return "", false
	}
	if p.Derived {
		return c.derived[name], true
	}
	return p.Default, true
}

// rawMain is the raw value of name in the main.cf context.
func (c *Config) rawMain(name string) (string, bool) {
	if e, ok := c.main[name]; ok {
		return e.Value, true
	}
	if v, ok := c.defaultRaw(name); ok {
		return v, true
	}
	if runtimeNames[name] {
		return "", true
	}
	return "", false
}

// rawDefaults is the raw value of name when main.cf is ignored (postconf -d).
func (c *Config) rawDefaults(name string) (string, bool) {
	if v, ok := c.defaultRaw(name); ok {
		return v, true
	}
	return "", runtimeNames[name]
}

// knownNames returns every registry and per-transport parameter name.
func (c *Config) knownNames() []string {
	names := make([]string, 0, len(registry)+len(c.services)*len(transportSuffixes))
	for n := range registry {
		names = append(names, n)
	}
	for _, s := range c.services {
		for suffix := range transportSuffixes {
			n := s.Name + "_" + suffix
			if _, ok := registry[n]; !ok {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return dedupSorted(names)
}

func dedupSorted(names []string) []string {
	out := names[:0]
	for i, n := range names {
		if i == 0 || n != names[i-1] {
			out = append(out, n)
		}
	}
	return out
}

func (c *Config) validatedInt(name string) (int, error) {
	v, err := newResolver(c.rawMain, nil).value(name)
	if err != nil {
		return 0, c.errorAt(name, err)
	}
	p, _ := c.param(name)
	if err := p.checkValue(v); err != nil {
		return 0, c.invalid(name, v, err)
	}
	n, _ := ParseInt(v)
	return int(n), nil
}

// errorAt prefixes err with the main.cf location of name.
func (c *Config) errorAt(name string, err error) error {
	if e, ok := c.main[name]; ok {
		return fmt.Errorf("%s:%d: parameter %s: %w", c.mainFile, e.Line, name, err)
	}
	return fmt.Errorf("%s: parameter %s (default): %w", c.mainFile, name, err)
}

func (c *Config) invalid(name, value string, err error) error {
	if e, ok := c.main[name]; ok {
		return fmt.Errorf("%s:%d: invalid value %q for parameter %s: %w", c.mainFile, e.Line, value, name, err)
	}
	raw, _ := c.defaultRaw(name)
	return fmt.Errorf("%s: invalid value %q for parameter %s (default %s): %w", c.mainFile, value, name, raw, err)
}

// expandAndValidate expands every main.cf and known parameter, checks each
// against its kind and reads the files of FileList parameters.
func (c *Config) expandAndValidate() ([]Warning, error) {
	var warns []Warning
	line := 0
	warned := map[string]bool{}
	r := newResolver(c.rawMain, func(name string) {
		if !warned[name] {
			warned[name] = true
			warns = append(warns, Warning{File: c.mainFile, Line: line, Message: "undefined parameter: " + name})
		}
	})
	c.values = map[string]string{}
	// main.cf entries first, each checked at once, so that errors and
	// warnings point at the line that causes them.
	for _, e := range c.entries {
		line = e.Line
		v, err := r.value(e.Name)
		if err != nil {
			return nil, c.errorAt(e.Name, err)
		}
		c.values[e.Name] = v
		if p, known := c.param(e.Name); known {
			if err := p.checkValue(v); err != nil {
				return nil, c.invalid(e.Name, v, err)
			}
		}
	}
	line = 0
	for _, n := range c.knownNames() {
		if _, set := c.main[n]; set {
			continue
		}
		v, err := r.value(n)
		if err != nil {
			return nil, c.errorAt(n, err)
		}
		c.values[n] = v
		p, _ := c.param(n)
		if err := p.checkValue(v); err != nil {
			return nil, c.invalid(n, v, err)
		}
	}
	c.lists = map[string][]string{}
	for _, n := range c.validationOrder() {
		if p, _ := c.param(n); p.FileList {
			l, err := expandFileList(c.values[n], 0)
			if err == nil {
				err = p.checkElems(l)
			}
			if err != nil {
				return nil, c.invalid(n, c.values[n], err)
			}
			c.lists[n] = l
		}
	}
	return warns, nil
}

// validationOrder lists known parameters set in main.cf in file order, then
// the remaining known parameters by name.
func (c *Config) validationOrder() []string {
	var out []string
	for _, e := range c.entries {
		if _, ok := c.param(e.Name); ok {
			out = append(out, e.Name)
		}
	}
	for _, n := range c.knownNames() {
		if _, set := c.main[n]; !set {
			out = append(out, n)
		}
	}
	return out
}

// serviceRaw is the raw-value function of one service's context.
func (c *Config) serviceRaw(s *Service) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := s.Overrides[name]; ok {
			return v, true
		}
		switch name {
		case "service_name":
			return s.Name, true
		case "process_name":
			return path.Base(s.Command), true
		}
		return c.rawMain(name)
	}
}

// validateServices expands every parameter in the context of each service
// with -o overrides, so loops and bad values there fail at Load.
func (c *Config) validateServices(file string) ([]Warning, error) {
	var warns []Warning
	for i := range c.services {
		s := &c.services[i]
		if len(s.Overrides) == 0 {
			continue
		}
		warned := map[string]bool{}
		r := newResolver(c.serviceRaw(s), func(name string) {
			if !warned[name] {
				warned[name] = true
				warns = append(warns, Warning{File: file, Line: s.Line, Message: "undefined parameter: " + name})
			}
		})
		names := append(sortedKeys(s.Overrides), c.validationOrder()...)
		for _, e := range c.entries {
			names = append(names, e.Name)
		}
		for _, n := range names {
			v, err := r.value(n)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: service %s: parameter %s: %w", file, s.Line, s.Name, n, err)
			}
			p, known := c.param(n)
			if !known {
				continue
			}
			if err := p.checkValue(v); err != nil {
				return nil, fmt.Errorf("%s:%d: invalid value %q for parameter %s in service %s: %w", file, s.Line, v, n, s.Name, err)
			}
			if p.FileList {
				l, err := expandFileList(v, 0)
				if err == nil {
					err = p.checkElems(l)
				}
				if err != nil {
					return nil, fmt.Errorf("%s:%d: invalid value %q for parameter %s in service %s: %w", file, s.Line, v, n, s.Name, err)
				}
			}
		}
	}
	return warns, nil
}

// usedNames collects the names referenced by main.cf values, -o values
// and smtpd_restriction_classes: user-defined parameters that are in use.
func (c *Config) usedNames() map[string]bool {
	used := map[string]bool{}
	for _, e := range c.entries {
		for _, n := range referencedNames(e.Value) {
			used[n] = true
		}
	}
	for _, s := range c.services {
		for _, v := range s.Overrides {
			for _, n := range referencedNames(v) {
				used[n] = true
			}
		}
	}
	for _, n := range SplitList(c.values["smtpd_restriction_classes"]) {
		used[n] = true
	}
	return used
}

// unusedWarnings reports main.cf and -o names that are neither known nor
// referenced by another value or restriction class, as postconf does.
func (c *Config) unusedWarnings(masterName string) []Warning {
	used := c.used
	var warns []Warning
	message := func(name, value string) string {
		if postfixOnly[name] {
			return fmt.Sprintf("parameter %s=%s is not implemented by yubin and is ignored", name, value)
		}
		return fmt.Sprintf("unused parameter: %s=%s", name, value)
	}
	for _, e := range c.entries {
		if _, known := c.param(e.Name); !known && !used[e.Name] && !runtimeNames[e.Name] {
			warns = append(warns, Warning{File: c.mainFile, Line: e.Line, Message: message(e.Name, e.Value)})
		}
	}
	for _, s := range c.services {
		for _, n := range sortedKeys(s.Overrides) {
			if _, known := c.param(n); !known && !used[n] && !runtimeNames[n] {
				if _, inMain := c.main[n]; !inMain {
					warns = append(warns, Warning{File: masterName, Line: s.Line, Message: message(n, s.Overrides[n])})
				}
			}
		}
	}
	return warns
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
