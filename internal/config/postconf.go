package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
)

// PostconfOptions selects what Postconf prints, like postconf(1)'s flags.
type PostconfOptions struct {
	Names      []string // only these parameters, in this order; empty: all
	NonDefault bool     // -n: only parameters set in main.cf
	Defaults   bool     // -d: default values instead of effective ones
	HideName   bool     // -h: print values without "name = "
	Expand     bool     // -x: expand $name references
}

// Postconf writes "name = value" lines the way postconf(1) does: values are
// raw unless opts.Expand, all parameters are sorted by name, selected names
// keep their order. Unknown selected names are skipped and reported in the
// returned error as "postconf: warning: NAME: unknown parameter".
func (c *Config) Postconf(w io.Writer, opts PostconfOptions) error {
	raw := c.rawMain
	if opts.Defaults {
		raw = c.rawDefaults
	}
	var r *resolver
	if opts.Expand {
		r = newResolver(raw, nil)
	}
	names := opts.Names
	if len(names) == 0 {
		names = c.listedNames(opts)
	}
	bw := bufio.NewWriter(w)
	var unknown []error
	for _, name := range names {
		if !c.listable(name, opts) {
			unknown = append(unknown, fmt.Errorf("postconf: warning: %s: unknown parameter", name))
			continue
		}
		if opts.NonDefault && !c.IsSet(name) {
			continue
		}
		value, _ := raw(name)
		if r != nil {
			v, err := r.value(name)
			if err != nil {
				return fmt.Errorf("postconf: %s: %w", name, err)
			}
			value = v
		}
		switch {
		case opts.HideName:
			fmt.Fprintln(bw, value)
		case value == "":
			fmt.Fprintf(bw, "%s =\n", name)
		default:
			fmt.Fprintf(bw, "%s = %s\n", name, value)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("postconf: write: %w", err)
	}
	return errors.Join(unknown...)
}

// listable reports whether postconf shows name: known parameters always,
// user-defined main.cf parameters only when something uses them and only
// for effective values (as postconf -d does not know them).
func (c *Config) listable(name string, opts PostconfOptions) bool {
	if _, ok := c.param(name); ok {
		return true
	}
	if opts.Defaults {
		return false
	}
	_, set := c.main[name]
	return set && c.used[name]
}

// listedNames is the full, sorted listing: the registry, the per-transport
// parameters of master.cf delivery services and used user-defined ones.
func (c *Config) listedNames(opts PostconfOptions) []string {
	names := make([]string, 0, len(registry)+len(c.entries))
	for n := range registry {
		names = append(names, n)
	}
	for _, s := range c.services {
		if s.Type == "inet" || !deliveryAgents[path.Base(s.Command)] {
			continue
		}
		for suffix := range transportSuffixes {
			names = append(names, s.Name+"_"+suffix)
		}
	}
	for _, e := range c.entries {
		if c.listable(e.Name, opts) {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)
	return dedupSorted(names)
}
