package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The live status page in a real browser: headless Chromium renders the
// page of a three-node cluster with mail in the queue.

// chromium runs headless Chromium on url with extra flags (--dump-dom,
// --screenshot=FILE) and returns its standard output.
func chromium(t *testing.T, bin, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--no-first-run", "--disable-sync", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000", "--window-size=1280,1600"}
	args = append(append(args, flags...), url)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(flags, " "), err, stderr.String())
	}
	return string(out)
}

// cell returns the text of the element with the given id in dom.
func cell(dom, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestBrowserStatusPage(t *testing.T) {
	bin := needTool(t, "chromium", "chromium-browser", "google-chrome")
	// smtp-sink waits 40 s before answering DATA: the deliveries stay
	// active, with live sessions to the destination, while the page is read.
	sink := startSMTPSink(t, "127.0.0.1", 0, "-w", "40")
	nodes := newCluster(t, 3, fmt.Sprintf("relayhost = [127.0.0.1]:%d\n", sink.Port), "")
	bases := make([]string, len(nodes))
	for i, n := range nodes {
		bases[i] = withMetrics(t, n)
	}
	startAll(t, nodes)
	k := leader(t, nodes, func(int) bool { return true })
	const queued = 4
	sendN(t, nodes[(k+1)%3], queued, "shop@yubin.test", []string{"user@remote.example"})

	// Wait until the leader delivers them all at once.
	type statusJSON struct {
		Queue struct {
			ByState map[string]int `json:"by_state"`
		} `json:"queue"`
		Destinations []struct {
			Nexthop string `json:"nexthop"`
			Active  int    `json:"active"`
		} `json:"destinations"`
	}
	var st statusJSON
	var lastBody string
	defer func() {
		if t.Failed() {
			t.Logf("leader's last status.json:\n%s", lastBody)
		}
	}()
	waitFor(t, 30*time.Second, "every message in delivery on the leader", func() bool {
		_, body, err := httpGet(bases[k] + "/status.json")
		lastBody = body
		if err != nil || json.Unmarshal([]byte(body), &st) != nil {
			return false
		}
		return st.Queue.ByState["active"] == queued && len(st.Destinations) == 1 && st.Destinations[0].Active == queued
	})

	dom := chromium(t, bin, bases[k]+"/", "--dump-dom")
	leaderName := fmt.Sprintf("n%d", k+1)
	for _, want := range []string{`data-member="n1"`, `data-member="n2"`, `data-member="n3"`,
		`data-domain="remote.example"`, `data-dest="smtp:` + st.Destinations[0].Nexthop + `"`, "ready: leader"} {
		if !strings.Contains(dom, want) {
			t.Errorf("leader's page has no %s", want)
		}
	}
	if got := cell(dom, "leader"); got != leaderName {
		t.Errorf("leader shown as %q, want %s", got, leaderName)
	}
	if got := cell(dom, "q-active"); got != fmt.Sprint(queued) {
		t.Errorf("active count shown as %q, want %d", got, queued)
	}
	if !regexp.MustCompile(`data-dest="smtp:[^"]*"><td>smtp</td><td>[^<]*</td><td class="num">` + fmt.Sprint(queued) + `</td><td class="num">\d+</td>`).MatchString(dom) {
		t.Errorf("the destination row does not show %d live sessions and a limit", queued)
	}
	if got := cell(dom, "q-total"); got != fmt.Sprint(queued) {
		t.Errorf("total shown as %q, want %d", got, queued)
	}
	if !strings.Contains(dom, `<polyline`) || !strings.Contains(dom, `data-series="delivered"`) {
		t.Errorf("no throughput chart in the page")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	// A follower's page shows the same cluster and points at the leader.
	f := (k + 1) % 3
	dom = chromium(t, bin, bases[f]+"/", "--dump-dom")
	if got := cell(dom, "leader"); got != leaderName {
		t.Errorf("follower's page shows leader %q, want %s", got, leaderName)
	}
	if got := cell(dom, "q-active"); got != fmt.Sprint(queued) {
		t.Errorf("follower's page: active %q, want %d", got, queued)
	}
	if !strings.Contains(dom, "The scheduler runs on the leader, "+leaderName) {
		t.Errorf("follower's page does not point at the leader's scheduler")
	}

	artifacts, err := filepath.Abs("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "status-page.png")
	os.Remove(shot)
	chromium(t, bin, bases[k]+"/", "--screenshot="+shot)
	if info, err := os.Stat(shot); err != nil || info.Size() < 1000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
}
