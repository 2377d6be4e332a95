package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDoc = flag.Bool("update-doc", false, "rewrite the generated parameter table in docs/configuration.md")

const (
	docPath        = "../../docs/configuration.md"
	docBeginMarker = "<!-- BEGIN GENERATED PARAMETER TABLE: go test ./internal/config -run TestConfigurationDoc -update-doc -->"
	docEndMarker   = "<!-- END GENERATED PARAMETER TABLE -->"
)

// referenceTable renders the registry as the Markdown table of
// docs/configuration.md.
func referenceTable() string {
	var b strings.Builder
	b.WriteString("| Parameter | Default | Kind | Meaning |\n|---|---|---|---|\n")
	for _, p := range Params() {
		def := "`" + p.Default + "`"
		switch {
		case p.Derived:
			def = "(computed)"
		case p.Default == "":
			def = "(empty)"
		}
		kind := p.Kind.String()
		if p.Kind == KindTime {
			kind = fmt.Sprintf("time (bare number: %c)", p.unit())
		}
		if len(p.Enum) > 0 {
			var vals []string
			for _, v := range p.Enum {
				if v != "" {
					vals = append(vals, v)
				}
			}
			kind += ": " + strings.Join(vals, ", ")
		}
		meaning := p.Meaning
		if p.Yubin {
			meaning = "**yubin-specific.** " + meaning
		}
		if p.Note != "" {
			meaning += " *" + p.Note + "*"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.Name, escapeCell(def), escapeCell(kind), escapeCell(meaning))
	}
	return b.String()
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func TestConfigurationDoc(t *testing.T) {
	text, err := os.ReadFile(filepath.FromSlash(docPath))
	if err != nil {
		t.Fatalf("read %s: %v", docPath, err)
	}
	doc := string(text)
	begin := strings.Index(doc, docBeginMarker)
	end := strings.Index(doc, docEndMarker)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the generated-table markers", docPath)
	}
	table := referenceTable()
	current := doc[begin+len(docBeginMarker) : end]
	if *updateDoc {
		doc = doc[:begin+len(docBeginMarker)] + "\n" + table + doc[end:]
		if err := os.WriteFile(filepath.FromSlash(docPath), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if strings.TrimSpace(current) != strings.TrimSpace(table) {
		t.Errorf("%s: parameter table is out of date; run go test ./internal/config -run TestConfigurationDoc -update-doc", docPath)
	}
	for _, p := range Params() {
		if !strings.Contains(doc, "`"+p.Name+"`") {
			t.Errorf("%s does not document parameter %s", docPath, p.Name)
		}
	}
	for _, s := range TransportSuffixes() {
		if !strings.Contains(doc, "TRANSPORT_"+s) {
			t.Errorf("%s does not document TRANSPORT_%s", docPath, s)
		}
	}
}
