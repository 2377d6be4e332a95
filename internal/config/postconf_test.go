package config

import (
	"bytes"
	"strings"
	"testing"
)

func postconf(t *testing.T, c *Config, opts PostconfOptions) (string, error) {
	t.Helper()
	var b bytes.Buffer
	err := c.Postconf(&b, opts)
	return b.String(), err
}

func TestPostconfNonDefault(t *testing.T) {
	c, _ := mustLoad(t, `myorigin = $mydomain
relayhost =
mydomain = example.jp
foo = unused
mua_restrictions = permit_sasl_authenticated, reject
docomo-smtp_destination_concurrency_limit = 1
`, "smtp inet n - n - - smtpd -o smtpd_client_restrictions=$mua_restrictions\ndocomo-smtp unix - - n - - smtp\n")
	got, err := postconf(t, c, PostconfOptions{NonDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `docomo-smtp_destination_concurrency_limit = 1
mua_restrictions = permit_sasl_authenticated, reject
mydomain = example.jp
myorigin = $mydomain
relayhost =
`
	if got != want {
		t.Errorf("postconf -n =\n%s\nwant\n%s", got, want)
	}
	got, _ = postconf(t, c, PostconfOptions{NonDefault: true, Expand: true, Names: []string{"myorigin", "mydomain", "mydestination"}})
	if want := "myorigin = example.jp\nmydomain = example.jp\n"; got != want {
		t.Errorf("postconf -n -x myorigin mydomain mydestination =\n%s\nwant\n%s", got, want)
	}
}

func TestPostconfDefaults(t *testing.T) {
	c, _ := mustLoad(t, "myorigin = example.jp\nmydomain = example.jp\ncompatibility_level = 3.6\n", noFile)
	tests := []struct {
		opts PostconfOptions
		want string
	}{
		{PostconfOptions{Defaults: true, Names: []string{"myorigin", "mydestination", "relayhost", "relay_domains", "mydomain"}},
			"myorigin = $myhostname\nmydestination = $myhostname, localhost.$mydomain, localhost\nrelayhost =\n" +
				"relay_domains = ${{$compatibility_level} <level {2} ? {$mydestination} : {}}\nmydomain = example.com\n"},
		{PostconfOptions{Names: []string{"myorigin", "mydestination"}},
			"myorigin = example.jp\nmydestination = $myhostname, localhost.$mydomain, localhost\n"},
		{PostconfOptions{Expand: true, Names: []string{"mydestination", "relay_domains", "smtpd_timeout"}},
			"mydestination = mx1.example.com, localhost.example.jp, localhost\nrelay_domains =\nsmtpd_timeout = 300s\n"},
		{PostconfOptions{Defaults: true, Expand: true, Names: []string{"mydestination", "relay_domains"}},
			"mydestination = mx1.example.com, localhost.example.com, localhost\nrelay_domains =\n"},
		{PostconfOptions{HideName: true, Names: []string{"myorigin", "relayhost"}}, "example.jp\n\n"},
		{PostconfOptions{HideName: true, Expand: true, Names: []string{"smtpd_banner"}}, "mx1.example.com ESMTP yubin\n"},
		{PostconfOptions{Names: []string{"smtp_destination_concurrency_limit", "retry_initial_destination_concurrency"}},
			"smtp_destination_concurrency_limit = $default_destination_concurrency_limit\nretry_initial_destination_concurrency = $initial_destination_concurrency\n"},
	}
	for _, tt := range tests {
		got, err := postconf(t, c, tt.opts)
		if err != nil {
			t.Errorf("%+v: %v", tt.opts, err)
		}
		if got != tt.want {
			t.Errorf("%+v:\n%s\nwant\n%s", tt.opts, got, tt.want)
		}
	}
}

func TestPostconfFullListing(t *testing.T) {
	c, _ := mustLoad(t, "mua = permit\n", "smtp inet n - n - - smtpd -o smtpd_client_restrictions=$mua\ndocomo-smtp unix - - n - 1 smtp\nbounce unix - - n - 0 bounce\n")
	for _, opts := range []PostconfOptions{{}, {Defaults: true}} {
		out, err := postconf(t, c, opts)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		names := map[string]bool{}
		prev := ""
		for _, l := range lines {
			name, _, ok := strings.Cut(l, " =")
			if !ok {
				t.Fatalf("malformed line %q", l)
			}
			if name <= prev {
				t.Errorf("not sorted: %q after %q", name, prev)
			}
			prev = name
			names[name] = true
		}
		for _, p := range Params() {
			if !names[p.Name] {
				t.Errorf("%+v: listing lacks %s", opts, p.Name)
			}
		}
		if !names["docomo-smtp_destination_rate_delay"] || names["bounce_destination_concurrency_limit"] {
			t.Errorf("%+v: per-transport parameters must be listed for delivery services only", opts)
		}
		if names["mua"] == opts.Defaults {
			t.Errorf("%+v: user-defined mua listed = %v", opts, names["mua"])
		}
	}
}

func TestPostconfUnknown(t *testing.T) {
	c, _ := mustLoad(t, "foo = bar\nbaz = 1\nmyorigin = $baz\n", noFile)
	got, err := postconf(t, c, PostconfOptions{Names: []string{"myorigin", "foo", "baz", "nosuch"}})
	if want := "myorigin = $baz\nbaz = 1\n"; got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
	if err == nil || err.Error() != "postconf: warning: foo: unknown parameter\npostconf: warning: nosuch: unknown parameter" {
		t.Errorf("error = %v", err)
	}
	_, err = postconf(t, c, PostconfOptions{Defaults: true, Names: []string{"baz"}})
	if err == nil || err.Error() != "postconf: warning: baz: unknown parameter" {
		t.Errorf("-d of a user-defined parameter: error = %v", err)
	}
}
