package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/internal/config"
	"github.com/yubin-mta/yubin/internal/control"
	"github.com/yubin-mta/yubin/internal/daemon"
	"github.com/yubin-mta/yubin/internal/lookup"
	"github.com/yubin-mta/yubin/internal/pickup"
	"github.com/yubin-mta/yubin/internal/showq"
	"github.com/yubin-mta/yubin/queue"
)

// loadConfig reads the configuration of -c DIR, $MAIL_CONFIG or the default.
func loadConfig(e *env, tool, dir string) (*config.Config, error) {
	cfg, warnings, err := config.LoadFromEnv(dir)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "%s: warning: %s\n", tool, w)
	}
	return cfg, nil
}

// call talks to the running node of the configuration.
func call(cfg *config.Config, op string, args any, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return control.Call(ctx, cfg.Get("yubin_control_socket"), op, args, body, out)
}

func newFlags(tool string, e *env) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(tool, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dir := fs.String("c", "", "configuration directory (default $MAIL_CONFIG or /etc/yubin)")
	return fs, dir
}

func listQueue(cfg *config.Config, queues ...queue.State) ([]queue.Message, error) {
	var msgs []queue.Message
	err := call(cfg, daemon.OpList, daemon.ListArgs{Queues: queues}, nil, &msgs)
	return msgs, err
}

func runMailq(e *env, args []string) int {
	return runPostqueue(e, append([]string{"-p"}, args...))
}

func runPostqueue(e *env, args []string) int {
	fs, dir := newFlags("postqueue", e)
	list := fs.Bool("p", false, "list the queue")
	js := fs.Bool("j", false, "list the queue as JSON lines")
	flush := fs.Bool("f", false, "flush: attempt delivery of all deferred mail")
	site := fs.String("s", "", "flush mail for this site")
	id := fs.String("i", "", "flush this message")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(e, "postqueue", *dir)
	if err != nil {
		return fail(e, "postqueue", err)
	}
	switch {
	case *list || *js:
		msgs, err := listQueue(cfg)
		if err != nil {
			return fail(e, "postqueue", err)
		}
		if *js {
			err = showq.JSON(e.stdout, msgs)
		} else {
			err = showq.Mailq(e.stdout, msgs, showq.Options{ShowNode: true})
		}
		if err != nil {
			return fail(e, "postqueue", err)
		}
	case *flush || *site != "" || *id != "":
		if err := call(cfg, daemon.OpFlush, daemon.FlushArgs{Site: *site, ID: *id}, nil, nil); err != nil {
			return fail(e, "postqueue", err)
		}
	default:
		fmt.Fprintln(e.stderr, "postqueue: fatal: usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site")
		return 2
	}
	return 0
}

// multi collects repeated flags such as postsuper -d A -d B.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

var queueNames = map[string]queue.State{
	"incoming": queue.Incoming, "active": queue.Active, "deferred": queue.Deferred, "hold": queue.Hold,
	"maildrop": "", // yubin's maildrop is drained at start; nothing queued lives there
}

func runPostsuper(e *env, args []string) int {
	fs, dir := newFlags("postsuper", e)
	var del, hold, release, requeue multi
	fs.Var(&del, "d", "delete the message with this queue ID, ALL, or - (IDs on stdin)")
	fs.Var(&hold, "h", "put on hold")
	fs.Var(&release, "H", "release from hold")
	fs.Var(&requeue, "r", "requeue")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var q queue.State
	if rest := fs.Args(); len(rest) > 0 {
		if len(rest) > 1 {
			return fail(e, "postsuper", errors.New("usage: postsuper [-c dir] [-d|-h|-H|-r id|ALL|-] [queue]"))
		}
		s, ok := queueNames[rest[0]]
		if !ok {
			return fail(e, "postsuper", fmt.Errorf("invalid directory name: %s", rest[0]))
		}
		q = s
	}
	cfg, err := loadConfig(e, "postsuper", *dir)
	if err != nil {
		return fail(e, "postsuper", err)
	}
	actions := []struct {
		name, verb string
		ids        multi
	}{{"delete", "Deleted", del}, {"hold", "Placed on hold", hold}, {"release", "Released from hold", release}, {"requeue", "Requeued", requeue}}
	did := false
	for _, a := range actions {
		if len(a.ids) == 0 {
			continue
		}
		did = true
		req := daemon.SuperArgs{Action: a.name, Queue: q}
		for _, id := range a.ids {
			switch {
			case id == "ALL":
				req.All = true
			case id == "-":
				ids, err := readIDs(e.stdin)
				if err != nil {
					return fail(e, "postsuper", err)
				}
				req.IDs = append(req.IDs, ids...)
			case strings.EqualFold(id, "all"):
				// Postfix accepts ALL only in capitals, to avoid accidents.
				return fail(e, "postsuper", fmt.Errorf("invalid queue id: %s", id))
			default:
				if err := queue.ValidateID(id); err != nil {
					return fail(e, "postsuper", fmt.Errorf("invalid queue id: %s", id))
				}
				req.IDs = append(req.IDs, id)
			}
		}
		if !req.All && len(req.IDs) == 0 {
			continue
		}
		var res daemon.SuperResult
		if err := call(cfg, daemon.OpSuper, req, nil, &res); err != nil {
			return fail(e, "postsuper", err)
		}
		if n := len(res.IDs); n > 0 {
			fmt.Fprintf(e.stderr, "postsuper: %s: %d message%s\n", a.verb, n, plural(n))
		}
	}
	if !did {
		fmt.Fprintln(e.stderr, "postsuper: fatal: usage: postsuper [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id] [-r queue_id] [queue...]")
		return 2
	}
	return 0
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// readIDs reads queue IDs, one per line (the first word), as postsuper - does.
func readIDs(r io.Reader) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		id := strings.TrimRight(f[0], "*!")
		if err := queue.ValidateID(id); err != nil {
			return nil, fmt.Errorf("invalid queue id: %s", f[0])
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

func runPostconf(e *env, args []string) int {
	fs, dir := newFlags("postconf", e)
	nonDefault := fs.Bool("n", false, "only parameters set in main.cf")
	defaults := fs.Bool("d", false, "default values")
	hide := fs.Bool("h", false, "values only, without names")
	expand := fs.Bool("x", false, "expand $name in values")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(e, "postconf", *dir)
	if err != nil {
		return fail(e, "postconf", err)
	}
	opts := config.PostconfOptions{Names: fs.Args(), NonDefault: *nonDefault, Defaults: *defaults, HideName: *hide, Expand: *expand}
	if err := cfg.Postconf(e.stdout, opts); err != nil {
		return fail(e, "postconf", err)
	}
	return 0
}

func runPostmap(e *env, args []string) int {
	fs, _ := newFlags("postmap", e)
	query := fs.String("q", "", "look up KEY in each table and print the first value found")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(e.stderr, "postmap: fatal: usage: postmap [-q key] type:name...")
		return 2
	}
	for _, spec := range fs.Args() {
		if !strings.Contains(spec, ":") {
			spec = "hash:" + spec // postmap's default type
		}
		t, err := lookup.Open(spec)
		if err != nil {
			return fail(e, "postmap", err)
		}
		if *query == "" {
			continue // opening parsed the whole table: yubin needs no .db build step
		}
		v, ok, err := t.Lookup(*query)
		if err != nil {
			return fail(e, "postmap", err)
		}
		if ok {
			fmt.Fprintln(e.stdout, v)
			return 0
		}
	}
	if *query != "" {
		return 1 // not found, like postmap -q
	}
	return 0
}

func runNewaliases(e *env, args []string) int {
	fs, dir := newFlags("newaliases", e)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(e, "newaliases", *dir)
	if err != nil {
		return fail(e, "newaliases", err)
	}
	for _, spec := range config.SplitList(cfg.Get("alias_database")) {
		if _, err := lookup.OpenAliases(spec); err != nil {
			return fail(e, "newaliases", err)
		}
	}
	err = call(cfg, daemon.OpNewaliases, nil, nil, nil)
	if err != nil && !errors.Is(err, control.ErrNotRunning) {
		return fail(e, "newaliases", err)
	}
	return 0
}

func runQshape(e *env, args []string) int {
	fs, dir := newFlags("qshape", e)
	sender := fs.Bool("s", false, "by sender domain")
	buckets := fs.Int("b", 10, "number of age buckets")
	minutes := fs.Int("t", 5, "age limit of the first bucket, in minutes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(e, "qshape", *dir)
	if err != nil {
		return fail(e, "qshape", err)
	}
	var queues []queue.State
	for _, q := range fs.Args() {
		s, ok := queueNames[q]
		if !ok || s == "" {
			return fail(e, "qshape", fmt.Errorf("unknown queue: %s", q))
		}
		queues = append(queues, s)
	}
	if len(queues) == 0 {
		queues = []queue.State{queue.Incoming, queue.Active, queue.Deferred}
	}
	msgs, err := listQueue(cfg, queues...)
	if err != nil {
		return fail(e, "qshape", err)
	}
	opt := showq.QshapeOptions{Sender: *sender, Buckets: *buckets, BucketTime: time.Duration(*minutes) * time.Minute}
	if err := showq.Qshape(e.stdout, msgs, opt); err != nil {
		return fail(e, "qshape", err)
	}
	return 0
}

// runSendmail implements the sendmail(1) interface Postfix offers.
func runSendmail(e *env, args []string) int {
	var (
		env     pickup.Envelope
		dir     string
		dotStop = true
		mode    = "deliver"
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, bool) {
			if len(a) > 2 {
				return a[2:], true
			}
			if i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		switch {
		case a == "--":
			env.Recipients = append(env.Recipients, args[i+1:]...)
			i = len(args)
		case a == "-t":
			env.Extract = true
		case a == "-i" || a == "-oi":
			dotStop = false
		case a == "-bp":
			mode = "list"
		case a == "-bi" || a == "-I":
			mode = "newaliases"
		case a == "-q":
			mode = "flush"
		case a == "-bm": // the default mode: deliver
		case strings.HasPrefix(a, "-f") || strings.HasPrefix(a, "-r"):
			v, ok := next()
			if !ok {
				return fail(e, "sendmail", errors.New("option -f requires an argument"))
			}
			if v == "<>" {
				v = ""
			}
			env.Sender = strings.Trim(v, "<>")
		case strings.HasPrefix(a, "-F"):
			v, _ := next()
			env.FullName = v
		case strings.HasPrefix(a, "-C"):
			v, _ := next()
			dir = v
		case strings.HasPrefix(a, "-o") || strings.HasPrefix(a, "-B") || strings.HasPrefix(a, "-N") ||
			strings.HasPrefix(a, "-R") || strings.HasPrefix(a, "-V") || a == "-v" || a == "-n" || a == "-m":
			// Accepted and ignored, as Postfix does for Sendmail compatibility.
			if (a == "-B" || a == "-N" || a == "-R" || a == "-V") && i+1 < len(args) {
				i++
			}
		case strings.HasPrefix(a, "-"):
			return fail(e, "sendmail", fmt.Errorf("unsupported option: %s", a))
		default:
			env.Recipients = append(env.Recipients, a)
		}
	}
	switch mode {
	case "list":
		return runPostqueue(e, withDir([]string{"-p"}, dir))
	case "newaliases":
		return runNewaliases(e, withDir(nil, dir))
	case "flush":
		return runPostqueue(e, withDir([]string{"-f"}, dir))
	}
	cfg, err := loadConfig(e, "sendmail", dir)
	if err != nil {
		return fail(e, "sendmail", err)
	}
	if len(env.Recipients) == 0 && !env.Extract {
		return fail(e, "sendmail", errors.New("Recipient addresses must be specified on the command line or via the -t option"))
	}
	raw, err := readMessage(e.stdin, dotStop, cfg.Get("message_size_limit"))
	if err != nil {
		return fail(e, "sendmail", err)
	}
	env.UID = os.Getuid()
	if u, err := user.Current(); err == nil {
		env.User = u.Username
	}
	env.Time = time.Now().Unix()
	var res daemon.SubmitResult
	err = call(cfg, daemon.OpSubmit, env, raw, &res)
	if errors.Is(err, control.ErrNotRunning) || errors.Is(err, control.ErrPermission) {
		// Postfix's postdrop: the node's pickup takes it from the maildrop
		// (at once when it runs, else when it starts).
		if _, err := pickup.Drop(daemon.MaildropDir(cfg), env, raw); err != nil {
			return fail(e, "sendmail", err)
		}
		return 0
	}
	if err != nil {
		return fail(e, "sendmail", err)
	}
	return 0
}

func withDir(args []string, dir string) []string {
	if dir == "" {
		return args
	}
	return append([]string{"-c", dir}, args...)
}

// readMessage reads the message from standard input; unless -i was given a
// line with a single dot ends it, as in Sendmail.
func readMessage(r io.Reader, dotStop bool, limitValue string) ([]byte, error) {
	limit, _ := strconv.ParseInt(limitValue, 10, 64)
	if limit <= 0 {
		limit = 1 << 40
	}
	var buf bytes.Buffer
	br := bufio.NewReader(io.LimitReader(r, limit+1))
	for {
		line, err := br.ReadBytes('\n')
		if dotStop && (string(line) == ".\n" || string(line) == ".\r\n" || (err == io.EOF && string(line) == ".")) {
			break
		}
		buf.Write(line)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read message: %w", err)
		}
	}
	if int64(buf.Len()) > limit {
		return nil, errors.New("message file too big")
	}
	return buf.Bytes(), nil
}
