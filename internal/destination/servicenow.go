package destination

import (
	"log/slog"
	"strings"

	"github.com/defender-siem/forwarder/internal/alert"
	snformat "github.com/defender-siem/forwarder/internal/format/servicenow"
	"github.com/defender-siem/forwarder/internal/pipeline"
	snsink "github.com/defender-siem/forwarder/internal/sink/servicenow"
)

// serviceNowKinds: an incident per alert; recommendations only when asked for.
var serviceNowKinds = []alert.Kind{alert.KindAlert, alert.KindGraphAlert}

// buildServiceNow is Type=servicenow: one incident per alert in a ServiceNow table, kept in
// step with the alert through the Table API.
func buildServiceNow(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := snformat.DefaultConfig()
	fc.CorrelationDisplay = r.str("CorrelationDisplay", fc.CorrelationDisplay)
	fc.AssignmentGroup = r.str("AssignmentGroup", "")
	fc.CallerID = r.str("CallerId", "")
	fc.Category = r.str("Category", "")
	fc.Subcategory = r.str("Subcategory", "")
	fc.CloseCode = r.str("CloseCode", fc.CloseCode)
	fc.DismissCloseCode = r.str("DismissCloseCode", fc.DismissCloseCode)
	fc.CloseNotes = r.str("CloseNotes", fc.CloseNotes)
	fc.MaxShortDescription = r.integer("MaxShortDescription", fc.MaxShortDescription, 16, 4000)
	fc.MaxDescription = r.integer("MaxDescription", fc.MaxDescription, 256, 1<<20)
	fc.MaxEntities = r.integer("MaxEntities", fc.MaxEntities, 0, 1000)
	for _, sev := range []alert.Severity{alert.SeverityHigh, alert.SeverityMedium, alert.SeverityLow, alert.SeverityInformational} {
		fc.Impact[sev] = r.oneOf("Impact__"+sev.String(), fc.Impact[sev], "1", "2", "3")
		fc.Urgency[sev] = r.oneOf("Urgency__"+sev.String(), fc.Urgency[sev], "1", "2", "3")
	}
	fc.Fields = map[string]string{}
	for k, v := range r.prefixed("Fields") {
		fc.Fields[k] = strings.TrimSpace(v)
	}
	checkEach(r, fc.Validate())

	sc := snsink.DefaultConfig()
	sc.URL = r.required("Url", "the instance URL, such as https://<instance>.service-now.com")
	sc.Table = r.str("Table", sc.Table)
	sc.Username = r.str("Username", "")
	sc.Password = r.secret("Password")
	sc.ClientID = r.str("ClientId", "")
	sc.ClientSecret = r.secret("ClientSecret")
	sc.GrantType = r.oneOf("GrantType", sc.GrantType, snsink.GrantPassword, snsink.GrantClientCredentials)
	sc.ResolveState = r.str("ResolveState", sc.ResolveState)
	sc.InProgressState = r.str("InProgressState", sc.InProgressState)
	sc.NewState = r.str("NewState", sc.NewState)
	sc.Reopen = r.boolean("Reopen", sc.Reopen)
	sc.ReopenState = r.str("ReopenState", sc.ReopenState)
	if cs := r.list("ClosedStates"); cs != nil {
		sc.ClosedStates = cs
	}
	sc.DuplicateCloseCode = r.str("DuplicateCloseCode", sc.DuplicateCloseCode)
	sc.Concurrency = r.integer("Concurrency", sc.Concurrency, 1, 64)
	sc.RequestTimeout = r.duration("RequestTimeout", sc.RequestTimeout)
	sc.TLS = readTLS(r)
	// The transport's problems are reported with the mapping's, all at once.
	checkEach(r, sc.Validate())
	if len(r.errs) > 0 {
		return
	}
	f, err := snformat.New(fc)
	if err != nil {
		r.check(err)
		return
	}
	client, err := snsink.New(sc, log)
	if err != nil {
		r.check(err)
		return
	}
	d.Formatter = f
	d.Sink = client
}

// checkEach reports each of a joined error's problems on a line of its own, each naming the
// destination.
func checkEach(r *reader, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			r.check(e)
		}
		return
	}
	r.check(err)
}
