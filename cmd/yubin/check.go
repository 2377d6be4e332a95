package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/control"
	"github.com/yubin-mta/yubin/internal/daemon"
	"github.com/yubin-mta/yubin/internal/ops/check"
)

// runCheck is `yubin check`, like `postfix check`: one line per problem,
// a summary, and exit status 1 when anything would stop the node.
func runCheck(e *env, args []string) int {
	fs, dir := newFlags("check", e)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return fail(e, "yubin check", fmt.Errorf("usage: yubin check [-c DIR]"))
	}
	cfg, warnings, err := config.LoadFromEnv(*dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "yubin check: error: %v\n", err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "yubin check: warning: %s\n", w)
	}
	report := check.Run(cfg, check.Options{UID: -1, NodeRunning: func() bool { return nodeRunning(cfg) }})
	for _, f := range report.Findings {
		fmt.Fprintf(e.stderr, "yubin check: %s\n", f)
	}
	summary := fmt.Sprintf("%d directories, %d tables, %d listeners", report.Directories, report.Tables, report.Listeners)
	if n := report.Errors(); n > 0 {
		fmt.Fprintf(e.stderr, "yubin check: %s: %d error(s) (%s)\n", cfg.Directory(), n, summary)
		return 1
	}
	fmt.Fprintf(e.stdout, "yubin check: %s: OK (%s)\n", cfg.Directory(), summary)
	return 0
}

// nodeRunning reports whether a node of this configuration answers on its
// control socket: the addresses it holds are then no conflict.
func nodeRunning(cfg *config.Config) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var st daemon.StatusResult
	return control.Call(ctx, cfg.Get("yubin_control_socket"), daemon.OpStatus, nil, nil, &st) == nil
}

// runReload is `yubin reload`, like `postfix reload`: the running node
// re-reads main.cf and its lookup tables without dropping connections.
func runReload(e *env, args []string) int {
	fs, dir := newFlags("reload", e)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(e, "reload", *dir)
	if err != nil {
		return fail(e, "reload", err)
	}
	var res daemon.ReloadResult
	if err := call(cfg, daemon.OpReload, nil, nil, &res); err != nil {
		return fail(e, "reload", err)
	}
	if len(res.Applied) > 0 {
		fmt.Fprintf(e.stdout, "reload: applied %s\n", strings.Join(res.Applied, ", "))
	}
	if len(res.NeedRestart) > 0 {
		fmt.Fprintf(e.stderr, "reload: warning: changed %s: takes effect after a restart\n", strings.Join(res.NeedRestart, ", "))
	}
	fmt.Fprintf(e.stdout, "reload: configuration %s reloaded\n", cfg.Directory())
	return 0
}
