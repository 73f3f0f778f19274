package destination

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/defender-siem/forwarder/internal/alert"
	laformat "github.com/defender-siem/forwarder/internal/format/loganalytics"
	"github.com/defender-siem/forwarder/internal/pipeline"
	lasink "github.com/defender-siem/forwarder/internal/sink/loganalytics"
)

// defaultStream is the stream the shipped DCR template declares.
const defaultStream = "Custom-DefenderForCloud"

// clouds maps the Cloud setting to the token audience of the Logs Ingestion API and the
// Entra ID authority of app registrations.
var clouds = map[string]struct {
	audience, authority string
}{
	"AzurePublic":     {lasink.AudiencePublic, cloud.AzurePublic.ActiveDirectoryAuthorityHost},
	"AzureGovernment": {lasink.AudienceGovernment, cloud.AzureGovernment.ActiveDirectoryAuthorityHost},
	"AzureChina":      {lasink.AudienceChina, cloud.AzureChina.ActiveDirectoryAuthorityHost},
}

// buildLogAnalytics is Type=log_analytics: one flat row per record to a Log Analytics
// custom table (Microsoft Sentinel's workspace) through the Logs Ingestion API.
func buildLogAnalytics(r *reader, d *pipeline.Destination, log *slog.Logger) {
	sc := lasink.DefaultConfig()
	sc.Endpoint = r.required("Endpoint", "the logs ingestion endpoint: a data collection endpoint's, or a Direct rule's own (https://….ingest.monitor.azure.com)")
	sc.RuleID = r.required("RuleId", "the data collection rule's immutable id (dcr-…)")
	def := r.str("Stream", defaultStream)
	byKind := map[alert.Kind]string{}
	for k, v := range r.prefixed("Streams") {
		kind, ok := parseKind(k)
		if !ok {
			r.fail("Streams__"+k, "%q is not a record kind: want one of %s", k, kindNames())
			continue
		}
		byKind[kind] = strings.TrimSpace(v)
	}
	sc.Streams = []string{def}
	for _, s := range byKind {
		if !slices.Contains(sc.Streams, s) {
			sc.Streams = append(sc.Streams, s)
		}
	}
	slices.Sort(sc.Streams[1:])

	cloudName := r.oneOf("Cloud", "AzurePublic", "AzurePublic", "AzureGovernment", "AzureChina")
	cl := clouds[cloudName]
	sc.Audience = r.str("Audience", cl.audience)
	auth := lasink.Auth{
		TenantID:                 r.str("TenantId", ""),
		ClientID:                 r.str("ClientId", ""),
		ClientSecret:             r.secret("ClientSecret"),
		CertificateFile:          r.str("ClientCertificate", ""),
		CertificatePassword:      r.secret("ClientCertificatePassword"),
		AuthorityHost:            r.str("AuthorityHost", ""),
		DisableInstanceDiscovery: r.boolean("DisableInstanceDiscovery", false),
	}
	app := auth.ClientSecret != "" || auth.CertificateFile != ""
	if app && auth.AuthorityHost == "" && cloudName != "AzurePublic" {
		auth.AuthorityHost = cl.authority
	}
	r.check(auth.Validate(""))
	sc.TLS = readTLS(r)
	sc.Gzip = r.boolean("Gzip", sc.Gzip)
	sc.MaxBatchBytes = r.integer("MaxBatchBytes", sc.MaxBatchBytes, 1024, lasink.MaxRequestBytes)
	sc.RequestTimeout = r.duration("RequestTimeout", sc.RequestTimeout)
	sc.Concurrency = r.integer("Concurrency", sc.Concurrency, 1, 64)
	// The credential is built only from valid settings; Validate needs one to be present.
	sc.Credential = placeholderCredential{}
	v := sc
	// A missing Endpoint or RuleId is already reported, under its setting's name.
	if v.Endpoint == "" {
		v.Endpoint = "https://missing.invalid"
	}
	if v.RuleID == "" {
		v.RuleID = "dcr-00000000000000000000000000000000"
	}
	r.check(v.Validate())
	if len(r.errs) > 0 {
		return
	}
	hc, err := lasink.HTTPClient(sc)
	if err != nil {
		r.check(err)
		return
	}
	cred, err := lasink.NewCredential(auth, hc)
	if err != nil {
		r.check(err)
		return
	}
	sc.Credential = cred
	client, err := lasink.New(sc, hc, log)
	if err != nil {
		r.check(err)
		return
	}
	log.Info("log analytics destination", "auth", auth.Mode(), "endpoint", sc.Endpoint, "rule", sc.RuleID, "streams", strings.Join(sc.Streams, ","))
	d.Formatter = streamFormatter{def: def, byKind: byKind, rows: laformat.New()}
	d.Sink = client
}

// streamFormatter renders a record's row behind the name of the stream its kind goes to,
// the payload framing the Log Analytics sink reads.
type streamFormatter struct {
	def    string
	byKind map[alert.Kind]string
	rows   laformat.Formatter
}

func (f streamFormatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if rec == nil {
		return dst, errors.New("loganalytics: nil record")
	}
	stream := f.def
	if s, ok := f.byKind[rec.Kind]; ok {
		stream = s
	}
	start := len(dst)
	out, err := f.rows.Format(lasink.AppendStream(dst, stream), rec)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// placeholderCredential stands in while the settings are validated, before the real one is
// built.
type placeholderCredential struct{}

func (placeholderCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("no credential")
}
