package loganalytics

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/lasim"
	"github.com/defender-siem/forwarder/internal/dev/samples"
	laformat "github.com/defender-siem/forwarder/internal/format/loganalytics"
)

type column struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

type template struct {
	Resources []struct {
		Type       string `json:"type"`
		Kind       string `json:"kind"`
		Properties struct {
			Schema struct {
				Columns []column `json:"columns"`
			} `json:"schema"`
			StreamDeclarations map[string]struct {
				Columns []column `json:"columns"`
			} `json:"streamDeclarations"`
			DataFlows []struct {
				Streams      []string `json:"streams"`
				TransformKql string   `json:"transformKql"`
				OutputStream string   `json:"outputStream"`
			} `json:"dataFlows"`
			RoleDefinitionID string `json:"roleDefinitionId"`
		} `json:"properties"`
	} `json:"resources"`
}

func readTemplate(t *testing.T) template {
	t.Helper()
	b, err := os.ReadFile("dcr.json")
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatalf("dcr.json: %v", err)
	}
	return tpl
}

// TestDCRFile holds the shipped table schema and rule to the formatter's columns: a column the
// formatter writes but the stream does not declare would be dropped by the service.
func TestDCRFile(t *testing.T) {
	tpl := readTemplate(t)
	var table, stream []column
	var flows, role int
	for _, r := range tpl.Resources {
		switch r.Type {
		case "Microsoft.OperationalInsights/workspaces/tables":
			table = r.Properties.Schema.Columns
		case "Microsoft.Insights/dataCollectionRules":
			if r.Kind != "Direct" {
				t.Errorf("rule kind %q, want Direct (its own ingestion endpoint, no DCE needed)", r.Kind)
			}
			stream = r.Properties.StreamDeclarations["Custom-DefenderForCloud"].Columns
			for _, f := range r.Properties.DataFlows {
				flows++
				if len(f.Streams) != 1 || f.Streams[0] != "Custom-DefenderForCloud" || !strings.Contains(f.TransformKql, "TimeGenerated") {
					t.Errorf("data flow %+v", f)
				}
			}
		case "Microsoft.Authorization/roleAssignments":
			role++
			if !strings.HasSuffix(r.Properties.RoleDefinitionID, "'3913510d-42f4-4e42-8a64-420c390055eb')]") && !strings.Contains(r.Properties.RoleDefinitionID, "monitoringMetricsPublisher") {
				t.Errorf("role %q is not Monitoring Metrics Publisher", r.Properties.RoleDefinitionID)
			}
		}
	}
	if flows != 1 || role != 1 {
		t.Errorf("%d data flows and %d role assignments, want 1 and 1", flows, role)
	}
	want := laformat.Columns
	if len(table) != len(want) || len(stream) != len(want) {
		t.Fatalf("table has %d columns, stream %d, formatter %d", len(table), len(stream), len(want))
	}
	for i, c := range want {
		if table[i].Name != c.Name || table[i].Type != string(c.Type) || stream[i].Name != c.Name || stream[i].Type != string(c.Type) {
			t.Errorf("column %d: table %+v, stream %+v, formatter %s %s", i, table[i], stream[i], c.Name, c.Type)
		}
		if table[i].Description == "" {
			t.Errorf("column %s has no description", c.Name)
		}
	}
}

// TestRowsThroughDeclaredStream sends real formatted rows to an endpoint that knows only the
// columns dcr.json declares, and checks that every column arrives with its value.
func TestRowsThroughDeclaredStream(t *testing.T) {
	tpl := readTemplate(t)
	cols := map[string]string{}
	for _, r := range tpl.Resources {
		for _, c := range r.Properties.StreamDeclarations["Custom-DefenderForCloud"].Columns {
			cols[c.Name] = c.Type
		}
	}
	r := startSim(t, lasim.Options{Columns: cols})
	c := r.client(t, r.withManagedIdentity(t, true), nil)
	var payloads [][]byte
	var want []map[string]json.RawMessage
	for _, name := range []string{"elastic_eventhub_alert.json", "elastic_eventhub_assessment.json"} {
		rec, err := alert.Parse(samples.Read(t, name), 0)
		if err != nil {
			t.Fatal(err)
		}
		p := AppendStream(nil, stream)
		start := len(p)
		p, err = laformat.New().Format(p, &rec)
		if err != nil {
			t.Fatal(err)
		}
		var row map[string]json.RawMessage
		if err := json.Unmarshal(p[start:], &row); err != nil {
			t.Fatal(err)
		}
		want = append(want, row)
		payloads = append(payloads, p)
	}
	noErrors(t, c.Send(ctx(t), payloads))
	got := r.sim.Rows(stream)
	if len(got) != len(want) {
		t.Fatalf("stored %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		for k, v := range want[i] {
			if string(got[i][k]) != string(v) {
				t.Errorf("row %d column %s: stored %.80s, sent %.80s", i, k, got[i][k], v)
			}
		}
	}
	var id string
	_ = json.Unmarshal(got[0]["SystemAlertId"], &id)
	if id != "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d" {
		t.Errorf("SystemAlertId %q", id)
	}
}
