// Command demo shows the forwarder's main job on one machine, without Azure: it starts
// Azurite (the Table storage emulator), local receivers for Splunk HEC, syslog, CEF and
// LogRhythm, and imitations of a ServiceNow instance and of the Azure Monitor Logs Ingestion
// API, starts the real handler binary exactly as the Functions host would, plays the bundled
// Defender sample exports at it in the host's Event Hubs envelope, and prints what each
// receiver got and how each invocation ended. `./build.sh run` runs it.
package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/graphsim"
	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/dev/lasim"
	"github.com/defender-siem/forwarder/internal/dev/snowsim"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

//go:embed samples
var samples embed.FS

const hecToken = "00000000-0000-0000-0000-00000000demo"

func main() {
	handler := flag.String("handler", "dist/app/handler", "the handler binary")
	appDir := flag.String("app", "dist/app", "the app folder (host.json)")
	azurite := flag.String("azurite", ".tools/node_modules/.bin/azurite-table", "the azurite-table binary")
	flag.Parse()
	if err := run(*handler, *appDir, *azurite); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(handler, appDir, azuriteBin string) error {
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "demo-azurite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	az, err := testenv.LaunchAzurite(azuriteBin, dir)
	if err != nil {
		return err
	}
	defer az.Stop()
	storage := az.ConnectionString()
	fmt.Printf("Azurite Table service on 127.0.0.1:%d\n", az.Port())

	hec, err := hecrecv.Start(hecToken)
	if err != nil {
		return err
	}
	defer hec.Close()
	fmt.Printf("Splunk HEC receiver on %s\n", hec.URL)
	// A second Splunk that is down at first shows a dead letter and its replay.
	down, err := hecrecv.Start(hecToken)
	if err != nil {
		return err
	}
	defer down.Close()
	down.Refuse(503)
	fmt.Printf("second Splunk HEC receiver (answering 503 busy for now) on %s\n", down.URL)
	rsys, err := startSyslog()
	if err != nil {
		return err
	}
	defer rsys.Close()
	arc, err := startSyslog()
	if err != nil {
		return err
	}
	defer arc.Close()
	lr, err := startWebhook()
	if err != nil {
		return err
	}
	defer lr.Close()
	fmt.Printf("syslog receiver (RFC 5424) on %s, ArcSight-style CEF receiver on %s, LogRhythm webhook on %s\n", rsys.Addr, arc.Addr, lr.URL)
	snow, err := snowsim.Start(snowsim.Options{User: snowUser, Password: snowPassword, TLS: true})
	if err != nil {
		return err
	}
	defer snow.Close()
	snowCA := path.Join(dir, "servicenow-ca.pem")
	if err := os.WriteFile(snowCA, snow.CertificatePEM(), 0o600); err != nil {
		return err
	}
	la, err := lasim.Start(lasim.Options{})
	if err != nil {
		return err
	}
	defer la.Close()
	// The function app's system-assigned identity, with Monitoring Metrics Publisher on the rule.
	la.AddManagedIdentity("")
	la.Grant("system")
	laCA, err := la.WriteCA(dir)
	if err != nil {
		return err
	}
	graph, err := graphsim.Start()
	if err != nil {
		return err
	}
	defer graph.Close()
	graph.AddApp(graphTenant, graphApp, graphSecret)
	graphCA, err := graph.WriteCA(dir)
	if err != nil {
		return err
	}
	fmt.Printf("ServiceNow instance imitation on %s, Logs Ingestion API imitation on %s (rule %s)\n", snow.URL, la.URL, la.RuleID)
	fmt.Printf("Microsoft Graph and Entra ID imitation on %s\n\n", graph.URL)

	host := &hostsim.Host{
		Path: handler,
		Dir:  appDir,
		Env: []string{
			"PATH=" + os.Getenv("PATH"),
			"AzureWebJobsStorage=" + storage,
			"FUNCTIONS_WORKER_RUNTIME=custom",
			"Destinations__splunk__Type=splunk_hec",
			"Destinations__splunk__Url=" + hec.URL,
			"Destinations__splunk__Token=" + hecToken,
			"Destinations__splunk__Index=defender",
			"Destinations__splunk_dr__Type=splunk_hec",
			"Destinations__splunk_dr__Url=" + down.URL,
			"Destinations__splunk_dr__Token=" + hecToken,
			"Destinations__splunk_dr__Kinds=alert",
			"Destinations__splunk_dr__RetryMaxAttempts=2",
			"Destinations__rsyslog__Type=syslog",
			"Destinations__rsyslog__Address=" + rsys.Addr,
			"Destinations__rsyslog__Hostname=defender-forwarder",
			"Destinations__arcsight__Type=cef",
			"Destinations__arcsight__Address=" + arc.Addr,
			"Destinations__arcsight__Hostname=defender-forwarder",
			"Destinations__logrhythm__Type=logrhythm",
			"Destinations__logrhythm__Url=" + lr.URL,
			"Destinations__servicenow__Type=servicenow",
			"Destinations__servicenow__Url=" + snow.URL,
			"Destinations__servicenow__Username=" + snowUser,
			"Destinations__servicenow__Password=" + snowPassword,
			"Destinations__servicenow__CAFile=" + snowCA,
			"Destinations__sentinel__Type=log_analytics",
			"Destinations__sentinel__Endpoint=" + la.URL,
			"Destinations__sentinel__RuleId=" + la.RuleID,
			"Destinations__sentinel__CAFile=" + laCA,
			// What App Service gives a function app with a managed identity.
			"IDENTITY_ENDPOINT=" + la.IdentityEndpoint,
			"IDENTITY_HEADER=" + la.IdentityHeader,
			"DeadLetter__ReplaySchedule=0 */15 * * * *",
			"Graph__Schedule=0 */5 * * * *",
			"Graph__TenantId=" + graphTenant,
			"Graph__ClientId=" + graphApp,
			"Graph__ClientSecret=" + graphSecret,
			"Graph__AuthorityHost=" + graph.URL,
			"Graph__DisableInstanceDiscovery=true",
			"Graph__BaseUrl=" + graph.URL,
			"Graph__CAFile=" + graphCA,
			"Forwarder__LogLevel=error",
		},
		Stdout: prefixWriter("handler | "),
		Stderr: prefixWriter("handler ! "),
	}
	startup, err := host.Start(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	defer host.Stop(5 * time.Second)
	fmt.Printf("handler answered the host's first probe %v after exec\n\n", startup.Round(100*time.Microsecond))

	names, bodies, err := loadSamples()
	if err != nil {
		return err
	}
	fmt.Println("Playing one Event Hubs batch (dataType string, partition 0) holding:")
	for i, n := range names {
		fmt.Printf("  message %d: %-28s %6d bytes\n", i, n, len(bodies[i]))
	}
	batch := hostsim.Batch{
		DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: "0", EventHub: "defender-export",
		ConsumerGroup: "$Default", Namespace: "demo.servicebus.windows.net", FirstSequence: 1000, FirstOffset: 4096,
		Enqueued: time.Now().UTC(), MethodName: "ForwardAlerts",
	}
	results, err := host.InvokeBatch(ctx, "ForwardAlerts", batch, 3)
	if err != nil {
		return err
	}
	for i, r := range results {
		fmt.Printf("\ninvocation attempt %d: HTTP %d in %v\n", i+1, r.Status, r.Elapsed.Round(time.Millisecond))
		for _, l := range r.Response.Logs {
			fmt.Println("  log:", l)
		}
	}

	fmt.Printf("\nThe HEC receiver got %d events:\n", hec.Count())
	printEvents(hec.Events())
	fmt.Printf("\nThe syslog receiver got %d messages (alerts only, by default):\n", len(rsys.Messages()))
	for _, m := range rsys.Messages() {
		fmt.Println("  " + shorten(m, 400))
	}
	fmt.Printf("\nThe CEF receiver got %d messages:\n", len(arc.Messages()))
	for _, m := range arc.Messages() {
		fmt.Println("  " + shorten(m, 700))
	}
	fmt.Printf("\nThe LogRhythm webhook got %d objects; the first, without original_message:\n", len(lr.Objects()))
	if objs := lr.Objects(); len(objs) > 0 {
		delete(objs[0], "original_message")
		b, _ := json.MarshalIndent(objs[0], "  ", "  ")
		fmt.Println("  " + string(b))
	}
	fmt.Printf("\nThe Log Analytics rule stored %d rows in Custom-DefenderForCloud; the columns of the first:\n", len(la.Rows("Custom-DefenderForCloud")))
	if rows := la.Rows("Custom-DefenderForCloud"); len(rows) > 0 {
		var cols []string
		for k, v := range rows[0] {
			if k != "Record" && k != "Entities" && k != "ExtendedProperties" {
				cols = append(cols, k+"="+shorten(string(v), 80))
			}
		}
		sort.Strings(cols)
		fmt.Println("  " + strings.Join(cols, "\n  "))
	}
	fmt.Println("\nServiceNow incidents (one per alert, found by correlation_id):")
	printIncidents(snow)
	last := results[len(results)-1]
	if !last.Succeeded() {
		return fmt.Errorf("the last invocation failed with HTTP %d", last.Status)
	}

	fmt.Println("\nDefender resolves the alert and exports it again:")
	resolved, err := withStatus(bodies[alertSample(names)], "Resolved")
	if err != nil {
		return err
	}
	rb := batch
	rb.Bodies, rb.FirstSequence = [][]byte{resolved}, batch.FirstSequence+int64(len(bodies))
	rr, err := host.InvokeBatch(ctx, "ForwardAlerts", rb, 1)
	if err != nil {
		return err
	}
	r := rr[len(rr)-1]
	fmt.Printf("  HTTP %d, %s\n", r.Status, strings.Join(r.Response.Logs, "; "))
	fmt.Println("ServiceNow incidents now (the same incident, resolved):")
	printIncidents(snow)

	fmt.Println("\nA tenant without continuous export: two Defender for Cloud alerts in the Graph Security API; the PollGraphAlerts timer fires:")
	graph.Put(graphTenant, graphsim.Alert(graphTenant, "dc638000_demo-1", graphsim.MDC, "Suspicious command line on vm1", "high", "new"))
	graph.Put(graphTenant, graphsim.Alert(graphTenant, "dc638000_demo-2", graphsim.MDC, "Access from a suspicious IP", "medium", "inProgress"))
	before := hec.Count()
	gr, err := host.Invoke(ctx, "PollGraphAlerts", hostsim.TimerEnvelope("PollGraphAlerts", time.Now()))
	if err != nil {
		return err
	}
	fmt.Printf("  HTTP %d, %s\n", gr.Status, strings.Join(gr.Response.Logs, "; "))
	fmt.Printf("The HEC receiver got %d more events:\n", hec.Count()-before)
	printEvents(hec.Events()[before:])
	fmt.Println("ServiceNow incidents now:")
	printIncidents(snow)
	fmt.Println("The timer fires again; nothing changed in Graph, so nothing is sent again:")
	before = hec.Count()
	if gr, err = host.Invoke(ctx, "PollGraphAlerts", hostsim.TimerEnvelope("PollGraphAlerts", time.Now())); err != nil {
		return err
	}
	fmt.Printf("  HTTP %d, %d new events at the HEC receiver\n", gr.Status, hec.Count()-before)

	fmt.Println("\nDead letters in Azurite (the operator's DeadLetters function, GET deadletters/list):")
	if err := showDeadLetters(ctx, host); err != nil {
		return err
	}

	fmt.Println("\nThe second Splunk is back; the ReplayDeadLetters timer fires:")
	down.Refuse(0)
	tr, err := host.Invoke(ctx, "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
	if err != nil {
		return err
	}
	fmt.Printf("  HTTP %d, %s\n", tr.Status, strings.Join(tr.Response.Logs, "; "))
	fmt.Printf("\nThe second receiver now has %d events:\n", down.Count())
	printEvents(down.Events())
	fmt.Println("\nDead letters left (the not-JSON message stays for an operator to inspect):")
	return showDeadLetters(ctx, host)
}

// The imitated services' accounts: made-up values, not credentials.
const (
	snowUser     = "svc_defender"
	snowPassword = "demo-password-7f3a"
	graphTenant  = "tid-demo"
	graphApp     = "app-demo"
	graphSecret  = "demo-graph-secret-51c2"
)

func printIncidents(snow *snowsim.Server) {
	recs := snow.Records("incident")
	if len(recs) == 0 {
		fmt.Println("  (none)")
	}
	for _, rec := range recs {
		fmt.Printf("  %s state=%s impact=%s urgency=%s close_code=%q correlation_id=%s\n      short_description: %s\n",
			rec["number"], rec["state"], rec["impact"], rec["urgency"], rec["close_code"], rec["correlation_id"], rec["short_description"])
		for _, n := range snow.WorkNotes(rec["sys_id"]) {
			fmt.Println("      work note: " + shorten(strings.ReplaceAll(n, "\n", " / "), 160))
		}
	}
}

// alertSample is the index of the flat sample alert among the samples.
func alertSample(names []string) int {
	for i, n := range names {
		if n == "alert.json" {
			return i
		}
	}
	return 0
}

// withStatus is the alert as Defender exports it again after a status change.
func withStatus(alert []byte, status string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(alert, &m); err != nil {
		return nil, err
	}
	m["Status"] = status
	return json.Marshal(m)
}

func showDeadLetters(ctx context.Context, host *hostsim.Host) error {
	env := hostsim.HTTPEnvelope("GET", "http://localhost:7071/api/deadletters/list", map[string]string{"action": "list"}, "")
	res, err := host.Invoke(ctx, "DeadLetters", env)
	if err != nil {
		return err
	}
	var out struct {
		StatusCode string `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(res.Response.Outputs["res"], &out); err != nil {
		return fmt.Errorf("DeadLetters answer: %w", err)
	}
	var letters []struct {
		Destination    string `json:"destination"`
		ID             string `json:"id"`
		Kind           string `json:"kind"`
		Reason         string `json:"reason"`
		Attempts       int    `json:"attempts"`
		SequenceNumber int64  `json:"sequenceNumber"`
		Error          string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out.Body), &letters); err != nil {
		return fmt.Errorf("DeadLetters body: %w", err)
	}
	if len(letters) == 0 {
		fmt.Println("  (none)")
	}
	for _, l := range letters {
		fmt.Printf("  %-13s %-16s seq=%d reason=%s attempts=%d\n      id=%s\n      error: %s\n", l.Destination, l.Kind, l.SequenceNumber, l.Reason, l.Attempts, l.ID, l.Error)
	}
	return nil
}

func loadSamples() ([]string, [][]byte, error) {
	entries, err := samples.ReadDir("samples")
	if err != nil {
		return nil, nil, err
	}
	var names []string
	var bodies [][]byte
	for _, e := range entries {
		b, err := samples.ReadFile(path.Join("samples", e.Name()))
		if err != nil {
			return nil, nil, err
		}
		names = append(names, e.Name())
		bodies = append(bodies, b)
	}
	return names, bodies, nil
}

// printEvents shows what a Splunk admin would check first: time, sourcetype, index and the
// indexed fields of every event.
func printEvents(evs []hecrecv.Event) {
	for _, ev := range evs {
		var fs []string
		for k, v := range ev.Fields {
			fs = append(fs, fmt.Sprintf("%s=%v", k, v))
		}
		sort.Strings(fs)
		t := "-"
		if ev.Time != nil {
			t = time.UnixMilli(int64(*ev.Time * 1000)).UTC().Format(time.RFC3339Nano)
		}
		fmt.Printf("  time=%s sourcetype=%s index=%s event=%d bytes\n      fields: %s\n", t, ev.SourceType, ev.Index, len(ev.Event), strings.Join(fs, " "))
	}
}

type prefixed struct {
	prefix string
	mu     sync.Mutex
	buf    bytes.Buffer
}

func prefixWriter(p string) io.Writer { return &prefixed{prefix: p} }

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadString('\n')
		if err != nil {
			p.buf.WriteString(line)
			return len(b), nil
		}
		fmt.Print(p.prefix + line)
	}
}
