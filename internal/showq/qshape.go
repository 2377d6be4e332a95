package showq

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/yubin-mta/yubin/queue"
)

// QshapeOptions are qshape(1)'s knobs.
type QshapeOptions struct {
	Sender     bool          // -s: by sender domain instead of recipient domain
	Buckets    int           // -b: number of age buckets (default 10)
	BucketTime time.Duration // -t: first bucket's age limit (default 5m)
	Now        time.Time
	MaxDomains int // lines after TOTAL; 0 = all
}

// Qshape writes the domain × age table of qshape(1): column T is the total,
// then buckets of geometrically growing age (5, 10, 20, ... minutes) and a
// last open-ended one.
func Qshape(w io.Writer, msgs []queue.Message, opt QshapeOptions) error {
	if opt.Buckets <= 0 {
		opt.Buckets = 10
	}
	if opt.BucketTime <= 0 {
		opt.BucketTime = 5 * time.Minute
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	limits := make([]time.Duration, opt.Buckets-1)
	for i := range limits {
		limits[i] = opt.BucketTime << i
	}
	counts := map[string][]int{}
	total := make([]int, opt.Buckets+1)
	add := func(domain string, age time.Duration) {
		row := counts[domain]
		if row == nil {
			row = make([]int, opt.Buckets+1)
			counts[domain] = row
		}
		b := len(limits)
		for i, l := range limits {
			if age <= l {
				b = i
				break
			}
		}
		row[0]++
		row[b+1]++
		total[0]++
		total[b+1]++
	}
	for _, m := range msgs {
		age := opt.Now.Sub(m.Arrival)
		if opt.Sender {
			add(domainOf(m.Sender), age)
			continue
		}
		for _, r := range m.Recipients {
			if !r.Status.Final() {
				add(domainOf(r.Addr), age)
			}
		}
	}
	domains := make([]string, 0, len(counts))
	for d := range counts {
		domains = append(domains, d)
	}
	sort.Slice(domains, func(i, j int) bool {
		a, b := counts[domains[i]][0], counts[domains[j]][0]
		if a != b {
			return a > b
		}
		return domains[i] < domains[j]
	})
	if opt.MaxDomains > 0 && len(domains) > opt.MaxDomains {
		domains = domains[:opt.MaxDomains]
	}

	header := []string{"T"}
	for _, l := range limits {
		header = append(header, strconv.Itoa(int(l/time.Minute)))
	}
	header = append(header, strconv.Itoa(int(limits[len(limits)-1]/time.Minute))+"+")
	rows := [][]int{total}
	for _, d := range domains {
		rows = append(rows, counts[d])
	}
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
		for _, r := range rows {
			if n := len(strconv.Itoa(r[i])); n > widths[i] {
				widths[i] = n
			}
		}
	}
	nameWidth := len("TOTAL")
	for _, d := range domains {
		if len(d) > nameWidth {
			nameWidth = len(d)
		}
	}
	bw := bufio.NewWriter(w)
	line := func(name string, cells []string) {
		fmt.Fprintf(bw, "%*s", nameWidth, name)
		for i, c := range cells {
			fmt.Fprintf(bw, " %*s", widths[i], c)
		}
		bw.WriteByte('\n')
	}
	line("", header)
	names := append([]string{"TOTAL"}, domains...)
	for i, r := range rows {
		cells := make([]string, len(r))
		for j, v := range r {
			cells[j] = strconv.Itoa(v)
		}
		line(names[i], cells)
	}
	return bw.Flush()
}

func domainOf(addr string) string {
	if addr == "" {
		return "MAILER-DAEMON"
	}
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return "localhost"
}
