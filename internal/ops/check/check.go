// Package check is `yubin check`, the counterpart of `postfix check`: it
// finds what would stop a node from starting or run it unsafely, before it
// is started. It checks the state directories (present with safe
// permissions, or creatable), opens every lookup table the configuration
// names, and tries the listener addresses.
package check

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/lookup"
)

// Severity grades a finding.
type Severity int

const (
	Warning Severity = iota // works, but should be fixed
	Error                   // the node would not start, or would run unsafely
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Finding is one problem.
type Finding struct {
	Severity Severity
	Subject  string // the parameter, file or address concerned
	Message  string
}

func (f Finding) String() string { return f.Severity.String() + ": " + f.Subject + ": " + f.Message }

// Report is the result of Run.
type Report struct {
	Findings    []Finding
	Directories int // checked
	Tables      int
	Listeners   int
}

// Errors counts the findings of severity Error.
func (r *Report) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == Error {
			n++
		}
	}
	return n
}

func (r *Report) add(sev Severity, subject, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Severity: sev, Subject: subject, Message: fmt.Sprintf(format, args...)})
}

// Options adjust Run.
type Options struct {
	// NodeRunning reports whether this configuration's node is running; an
	// address it holds is not a conflict. nil means no node runs.
	NodeRunning func() bool
	// UID is the user the node will run as; -1 means the current one.
	UID int
}

// Run checks cfg.
func Run(cfg *config.Config, opts Options) Report {
	if opts.UID < 0 {
		opts.UID = os.Geteuid()
	}
	var r Report
	checkDirectories(&r, cfg, opts.UID)
	checkTables(&r, cfg)
	checkListeners(&r, cfg, opts.NodeRunning)
	return r
}

// stateDirectories are the directories a node writes, by the parameter
// that names them.
func stateDirectories(cfg *config.Config) [][2]string {
	dirs := [][2]string{
		{"queue_directory", cfg.Get("queue_directory")},
		{"data_directory", cfg.Get("data_directory")},
		{"yubin_raft_directory", cfg.Get("yubin_raft_directory")},
		{"yubin_control_socket", filepath.Dir(cfg.Get("yubin_control_socket"))},
	}
	switch log := cfg.Get("maillog_file"); log {
	case "", "-", "/dev/stdout", "/dev/stderr":
	default:
		dirs = append(dirs, [2]string{"maillog_file", filepath.Dir(log)})
	}
	return dirs
}

func checkDirectories(r *Report, cfg *config.Config, uid int) {
	seen := map[string]bool{}
	for _, d := range stateDirectories(cfg) {
		name, dir := d[0], d[1]
		subject := name + " " + dir
		if dir == "" || !filepath.IsAbs(dir) {
			r.add(Error, subject, "must be an absolute path")
			continue
		}
		dir = filepath.Clean(dir)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		r.Directories++
		info, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			checkCreatable(r, subject, dir)
		case err != nil:
			r.add(Error, subject, "%v", err)
		case !info.IsDir():
			r.add(Error, subject, "is not a directory")
		default:
			checkPermissions(r, subject, name, dir, info, uid)
		}
	}
}

// checkCreatable reports whether the node can create dir (mode 0700) at
// start: its nearest existing ancestor must be a writable directory.
func checkCreatable(r *Report, subject, dir string) {
	parent := dir
	for {
		next := filepath.Dir(parent)
		if next == parent {
			r.add(Error, subject, "does not exist and has no existing parent")
			return
		}
		parent = next
		info, err := os.Stat(parent)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.add(Error, subject, "does not exist: %v", err)
			return
		}
		if !info.IsDir() {
			r.add(Error, subject, "cannot be created: %s is not a directory", parent)
			return
		}
		if err := unix.Access(parent, unix.W_OK|unix.X_OK); err != nil {
			r.add(Error, subject, "does not exist and cannot be created: %s is not writable", parent)
		}
		return
	}
}

// checkPermissions flags what would let other users read or change the
// queue: group or world write access, and a foreign owner.
func checkPermissions(r *Report, subject, name, dir string, info fs.FileInfo, uid int) {
	mode := info.Mode().Perm()
	switch {
	case mode&0o002 != 0 && info.Mode()&fs.ModeSticky == 0:
		r.add(Error, subject, "is world-writable (mode %04o); use chmod 700", mode)
	case mode&0o020 != 0 && name != "maillog_file":
		r.add(Warning, subject, "is group-writable (mode %04o)", mode)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid && st.Uid != 0 {
		r.add(Warning, subject, "is owned by uid %d, the node runs as uid %d", st.Uid, uid)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		r.add(Error, subject, "is not writable by this user: %v", err)
	}
}

// mapTypes are Postfix's lookup table types (postconf -m and the ones it
// can be built with). An element "type:name" of another prefix, such as
// inet:host:port of a policy service or smtp:[host] of a transport, is not
// a table.
var mapTypes = map[string]bool{
	"btree": true, "cdb": true, "cidr": true, "dbm": true, "environ": true, "fail": true, "hash": true,
	"inline": true, "internal": true, "ldap": true, "lmdb": true, "memcache": true, "mysql": true, "nis": true,
	"nisplus": true, "pcre": true, "pgsql": true, "pipemap": true, "proxy": true, "randmap": true, "regexp": true,
	"sdbm": true, "socketmap": true, "sqlite": true, "static": true, "tcp": true, "texthash": true, "unionmap": true,
}

// aliasParams hold aliases(5) tables, read with postalias syntax.
var aliasParams = map[string]bool{"alias_maps": true, "alias_database": true}

// TableSpecs returns the type:name elements of a parameter value.
func TableSpecs(elems []string) []string {
	var out []string
	for _, e := range elems {
		typ, name, ok := strings.Cut(e, ":")
		if !ok || name == "" || !mapTypes[typ] {
			continue
		}
		if strings.TrimPrefix(e, "proxy:") == "unix:passwd.byname" {
			continue // the system password database, always there
		}
		out = append(out, e)
	}
	return out
}

// tableUse is where a table is named.
type tableUse struct {
	params  []string
	aliases bool
}

func checkTables(r *Report, cfg *config.Config) {
	uses := map[string]*tableUse{}
	note := func(param string, elems []string) {
		for _, spec := range TableSpecs(elems) {
			u := uses[spec]
			if u == nil {
				u = &tableUse{}
				uses[spec] = u
			}
			u.params = append(u.params, param)
			u.aliases = u.aliases || aliasParams[param]
		}
	}
	for _, p := range config.Params() {
		note(p.Name, cfg.List(p.Name))
	}
	for _, svc := range cfg.Services() {
		for name := range svc.Overrides {
			note(svc.Name+"/"+svc.Type+" -o "+name, cfg.ServiceList(svc.Name, name))
		}
	}
	specs := make([]string, 0, len(uses))
	for s := range uses {
		specs = append(specs, s)
	}
	sort.Strings(specs)
	for _, spec := range specs {
		u := uses[spec]
		r.Tables++
		open := lookup.Open
		if u.aliases {
			open = lookup.OpenAliases
		}
		subject := strings.Join(dedup(u.params), ", ") + " " + spec
		t, err := open(spec)
		if err != nil {
			r.add(Error, subject, "%v", err)
			continue
		}
		if w, ok := t.(interface{ Warnings() []string }); ok {
			for _, msg := range w.Warnings() {
				r.add(Warning, subject, "%s", msg)
			}
		}
	}
}

func dedup(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// listenAddresses are the TCP addresses a node binds.
func listenAddresses(cfg *config.Config) [][2]string {
	var out [][2]string
	for _, l := range cfg.InetListeners() {
		label := "master.cf " + l.Service.Name + "/inet"
		if l.Service.Name == l.Address {
			label = "master.cf inet" // the service name is the address
		}
		out = append(out, [2]string{label, l.Address})
	}
	for _, p := range []string{"yubin_cluster_address", "yubin_metrics_address"} {
		if v := cfg.Get(p); v != "" {
			out = append(out, [2]string{p, v})
		}
	}
	return out
}

func checkListeners(r *Report, cfg *config.Config, running func() bool) {
	isRunning, asked := false, false
	for _, l := range listenAddresses(cfg) {
		subject := l[0] + " " + l[1]
		r.Listeners++
		ln, err := net.Listen("tcp", l[1])
		if err == nil {
			ln.Close()
			continue
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			if !asked {
				isRunning, asked = running != nil && running(), true
			}
			if !isRunning {
				r.add(Error, subject, "address already in use by another program")
			}
		case errors.Is(err, syscall.EACCES):
			r.add(Error, subject, "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE")
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			r.add(Error, subject, "no such local address")
		default:
			r.add(Error, subject, "%v", err)
		}
	}
}
