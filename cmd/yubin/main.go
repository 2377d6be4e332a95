// Command yubin is the whole mail system in one multi-call binary: the
// daemon (`yubin serve`) and the Postfix-compatible tools. Called through a
// link named mailq, sendmail, postqueue, postsuper, postconf, postmap,
// newaliases or qshape, it behaves as that tool.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Set at link time (see Makefile).
var (
	version = "dev"
	commit  = "unknown"
)

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	run     func(e *env, args []string) int
	summary string
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"serve":      {runServe, "run a node: SMTP, queue, delivery"},
		"mailq":      {runMailq, "list the queue (postqueue -p)"},
		"postqueue":  {runPostqueue, "list (-p, -j) or flush (-f, -s SITE, -i ID) the queue"},
		"postsuper":  {runPostsuper, "delete (-d), hold (-h), release (-H), requeue (-r) messages"},
		"postconf":   {runPostconf, "print configuration parameters"},
		"postmap":    {runPostmap, "query (-q KEY TYPE:NAME) or check lookup tables"},
		"sendmail":   {runSendmail, "submit a message read from standard input"},
		"newaliases": {runNewaliases, "check the alias files and reload them"},
		"qshape":     {runQshape, "the queue by domain and age"},
		"version":    {runVersion, "print version and commit"},
		"cluster":    {runCluster, "cluster status, join NAME HOST:PORT, leave NAME"},
		"reload":     {runReload, "re-read main.cf and the lookup tables of the running node"},
		"check":      {runCheck, "check the configuration, directories, tables and ports"},
	}
}

func main() {
	os.Exit(run(os.Args, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

func run(argv []string, e *env) int {
	name := filepath.Base(argv[0])
	args := argv[1:]
	if _, ok := commands[name]; !ok || name == "serve" || name == "version" {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage(e.stderr)
			return 2
		}
		name, args = args[0], args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "yubin: unknown command %q\n", name)
		usage(e.stderr)
		return 2
	}
	return cmd.run(e, args)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: yubin COMMAND [options]   (or call it as mailq, sendmail, postqueue, ...)")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
}

func runVersion(e *env, _ []string) int {
	fmt.Fprintf(e.stdout, "yubin %s (commit %s)\n", version, commit)
	return 0
}

// fail prints a Postfix-style "tool: fatal: ..." line and returns status 1.
func fail(e *env, tool string, err error) int {
	msg := err.Error()
	if !strings.HasPrefix(msg, tool+":") {
		msg = tool + ": fatal: " + msg
	}
	fmt.Fprintln(e.stderr, msg)
	return 1
}
