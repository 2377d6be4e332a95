package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/yubin-mta/yubin/internal/daemon"
)

func runCluster(e *env, args []string) int {
	fs, dir := newFlags("cluster", e)
	asJSON := fs.Bool("j", false, "status as JSON")
	// The subcommand may come before or after the flags.
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		args = fs.Args()
		if len(args) > 0 {
			rest = append(rest, args[0])
			args = args[1:]
		}
	}
	usage := errors.New("usage: yubin cluster status [-j] | join NAME HOST:PORT | leave NAME")
	if len(rest) == 0 {
		return fail(e, "cluster", usage)
	}
	cfg, err := loadConfig(e, "cluster", *dir)
	if err != nil {
		return fail(e, "cluster", err)
	}
	switch {
	case rest[0] == "status" && len(rest) == 1:
		var st daemon.ClusterStatus
		if err := call(cfg, daemon.OpClusterStatus, nil, nil, &st); err != nil {
			return fail(e, "cluster", err)
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			enc.Encode(&st)
			return 0
		}
		printClusterStatus(e, &st)
	case rest[0] == "join" && len(rest) == 3:
		if err := call(cfg, daemon.OpClusterJoin, daemon.MemberArgs{Name: rest[1], Addr: rest[2]}, nil, nil); err != nil {
			return fail(e, "cluster", err)
		}
		fmt.Fprintf(e.stdout, "%s (%s) joined the cluster\n", rest[1], rest[2])
	case rest[0] == "leave" && len(rest) == 2:
		if err := call(cfg, daemon.OpClusterLeave, daemon.MemberArgs{Name: rest[1]}, nil, nil); err != nil {
			return fail(e, "cluster", err)
		}
		fmt.Fprintf(e.stdout, "%s left the cluster\n", rest[1])
	default:
		return fail(e, "cluster", usage)
	}
	return 0
}

func printClusterStatus(e *env, st *daemon.ClusterStatus) {
	s := st.Self
	leader := s.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(e.stdout, "node %s: %s, term %d, leader %s\n\n", s.Node, s.State, s.Term, leader)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tADDRESS\tSUFFRAGE\tSTATE\tLAST CONTACT\tCOMMIT\tAPPLIED\tDELIVERING")
	for _, m := range s.Members {
		suffrage := "non-voter"
		if m.Voter {
			suffrage = "voter"
		}
		ms, ok := st.Members[m.Name]
		if m.Name == s.Node {
			ms, ok = s, true
		}
		state, contact, commit, applied := "unreachable", "-", "-", "-"
		if ok {
			state = ms.State
			if !ms.LastContact.IsZero() {
				contact = time.Since(ms.LastContact).Round(time.Millisecond).String() + " ago"
			}
			commit, applied = fmt.Sprint(ms.CommitIndex), fmt.Sprint(ms.FSMIndex)
		} else if msg := st.Errors[m.Name]; msg != "" {
			state = "unreachable"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", m.Name, m.Addr, suffrage, state, contact, commit, applied, st.Delivery[m.Name])
	}
	tw.Flush()
	queues := make([]string, 0, len(st.ByQueue))
	for q := range st.ByQueue {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	fmt.Fprint(e.stdout, "\nqueue:")
	if len(queues) == 0 {
		fmt.Fprint(e.stdout, " empty")
	}
	for _, q := range queues {
		fmt.Fprintf(e.stdout, " %s=%d", q, st.ByQueue[q])
	}
	fmt.Fprintln(e.stdout)
}
