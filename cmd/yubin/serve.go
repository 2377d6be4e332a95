package main

import (
	"github.com/yubin-mta/yubin/internal/daemon"
)

func runServe(e *env, args []string) int {
	fs, dir := newFlags("serve", e)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(e, "yubin", *dir)
	if err != nil {
		return fail(e, "yubin", err)
	}
	daemon.Version = version
	daemon.Commit = commit
	if err := daemon.Run(cfg); err != nil {
		return fail(e, "yubin", err)
	}
	return 0
}
