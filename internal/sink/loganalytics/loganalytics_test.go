package loganalytics

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs/fake"

	"github.com/defender-siem/forwarder/internal/dev/lasim"
	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

const stream = "Custom-DefenderForCloud"

// miSeq gives every managed-identity test its own client id: MSAL caches managed identity
// tokens for the whole process, keyed by identity, and each test must see its own.
var miSeq atomic.Int64

type rig struct {
	sim    *lasim.Server
	caFile string
	id     string // the granted principal
}

func startSim(t *testing.T, opts lasim.Options) *rig {
	t.Helper()
	sim, err := lasim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &rig{sim: sim, caFile: ca}
}

// withManagedIdentity points azidentity at the imitation's App Service identity endpoint and
// assigns (and, if grant, authorises) a fresh user-assigned identity.
func (r *rig) withManagedIdentity(t *testing.T, grant bool) Auth {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", r.sim.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", r.sim.IdentityHeader)
	r.id = fmt.Sprintf("00000000-0000-0000-0000-%012d", miSeq.Add(1))
	r.sim.AddManagedIdentity(r.id)
	if grant {
		r.sim.Grant(r.id)
	}
	return Auth{ClientID: r.id}
}

func (r *rig) client(t *testing.T, auth Auth, mod func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Endpoint = r.sim.URL
	cfg.RuleID = r.sim.RuleID
	cfg.Streams = []string{stream}
	cfg.TLS = tlsconf.Config{CAFile: r.caFile}
	cfg.RequestTimeout = 20 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	hc, err := HTTPClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := NewCredential(auth, hc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credential = cred
	c, err := New(cfg, hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func rows(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		pad := strings.Repeat("x", max(0, size-40))
		out[i] = Payload(nil, stream, fmt.Appendf(nil, `{"RecordId":"r%06d","Description":"%s"}`, i, pad))
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func noErrors(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
	}
}

func storedIDs(t *testing.T, sim *lasim.Server) []string {
	t.Helper()
	var ids []string
	for _, r := range sim.Rows(stream) {
		var id string
		_ = json.Unmarshal(r["RecordId"], &id)
		ids = append(ids, id)
	}
	return ids
}

// TestManagedIdentityBatchesAndReusesToken: many rows across several Sends arrive whole and in
// order, every request under 1 MB before and after compression, gzip on the wire, and one
// token serves them all.
func TestManagedIdentityBatchesAndReusesToken(t *testing.T) {
	r := startSim(t, lasim.Options{})
	c := r.client(t, r.withManagedIdentity(t, true), nil)
	const perSend, sends = 1500, 3
	all := rows(perSend*sends, 1200)
	for s := range sends {
		noErrors(t, c.Send(ctx(t), all[s*perSend:(s+1)*perSend]))
	}
	ids := storedIDs(t, r.sim)
	if len(ids) != perSend*sends {
		t.Fatalf("stored %d rows, want %d", len(ids), perSend*sends)
	}
	// Requests run concurrently, so rows of one Send may land in any order; each once.
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("row %s stored twice", id)
		}
		seen[id] = true
	}
	for i := range perSend * sends {
		if !seen[fmt.Sprintf("r%06d", i)] {
			t.Fatalf("row r%06d missing", i)
		}
	}
	ups := r.sim.Uploads()
	if len(ups) < sends*2 {
		t.Errorf("%d requests for %d bytes of rows: not split under 1 MB", len(ups), perSend*sends*1200)
	}
	for _, u := range ups {
		if u.BodyBytes > lasim.MaxBody || u.WireBytes > lasim.MaxBody {
			t.Errorf("request of %d bytes (%d on the wire) exceeds 1 MB", u.BodyBytes, u.WireBytes)
		}
		if !u.Gzip || u.WireBytes >= u.BodyBytes {
			t.Errorf("request not compressed: %+v", u)
		}
		if u.Principal != r.id {
			t.Errorf("uploaded as %q, want %q", u.Principal, r.id)
		}
	}
	if n := r.sim.TokensIssued(r.id); n != 1 {
		t.Errorf("%d tokens for %d requests, want 1 reused", n, len(ups))
	}
}

func TestGzipOffAndIncompressible(t *testing.T) {
	r := startSim(t, lasim.Options{})
	c := r.client(t, r.withManagedIdentity(t, true), func(c *Config) { c.Gzip = false })
	noErrors(t, c.Send(ctx(t), rows(10, 100)))
	for _, u := range r.sim.Uploads() {
		if u.Gzip {
			t.Errorf("Gzip=false but the body was compressed")
		}
	}
	// A body gzip cannot shrink goes as it is, so that compression never pushes a full
	// request over the limit.
	if _, ok := compress([]byte("[]")); ok {
		t.Errorf("a 2-byte body compressed smaller")
	}
}

func TestTooLargeAndBadPayloads(t *testing.T) {
	r := startSim(t, lasim.Options{})
	c := r.client(t, r.withManagedIdentity(t, true), nil)
	big := Payload(nil, stream, []byte(`{"Description":"`+strings.Repeat("a", MaxRequestBytes)+`"}`))
	fits := Payload(nil, stream, []byte(`{"Description":"`+strings.Repeat("b", MaxRequestBytes-2-len(`{"Description":""}`))+`"}`))
	payloads := [][]byte{
		big,
		Payload(nil, stream, []byte(`{"RecordId":"ok"}`)),
		[]byte(`{"no":"stream"}`),
		Payload(nil, "Custom-Other", []byte(`{}`)),
		Payload(nil, stream, []byte(`[1]`)),
		fits,
	}
	errs := c.Send(ctx(t), payloads)
	want := []sink.Reason{sink.ReasonTooLarge, "", sink.ReasonRejected, sink.ReasonRejected, sink.ReasonRejected, ""}
	for i, w := range want {
		if w == "" {
			if errs[i] != nil {
				t.Errorf("payload %d: %v", i, errs[i])
			}
			continue
		}
		if !sink.IsPermanent(errs[i]) || sink.ReasonOf(errs[i]) != w {
			t.Errorf("payload %d: %v, want permanent %s", i, errs[i], w)
		}
	}
	if n := len(r.sim.Rows(stream)); n != 2 {
		t.Errorf("stored %d rows, want 2", n)
	}
	for _, u := range r.sim.Uploads() {
		if u.BodyBytes > lasim.MaxBody {
			t.Errorf("a request of %d bytes was sent", u.BodyBytes)
		}
	}
}

func TestResponses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		reason     sink.Reason
		permanent  bool
		wait       time.Duration
		says       string
	}{
		{"throttled", 429, "7", sink.ReasonThrottled, false, 7 * time.Second, "HTTP 429"},
		{"unavailable", 503, "", sink.ReasonThrottled, false, 0, "HTTP 503"},
		{"server error", 500, "2", sink.ReasonUnreachable, false, 2 * time.Second, "HTTP 500"},
		{"bad request", 400, "", sink.ReasonRejected, true, 0, "HTTP 400"},
		{"forbidden", 403, "", sink.ReasonUnauthorized, true, 0, "Monitoring Metrics Publisher"},
		{"too large", 413, "", sink.ReasonTooLarge, true, 0, "HTTP 413"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startSim(t, lasim.Options{})
			c := r.client(t, r.withManagedIdentity(t, true), nil)
			r.sim.FailNext(1, tc.status, tc.retryAfter)
			errs := c.Send(ctx(t), rows(1, 50))
			err := errs[0]
			if err == nil {
				t.Fatal("accepted")
			}
			if sink.IsPermanent(err) != tc.permanent || sink.ReasonOf(err) != tc.reason {
				t.Errorf("%v: permanent=%v reason=%s, want %v %s", err, sink.IsPermanent(err), sink.ReasonOf(err), tc.permanent, tc.reason)
			}
			if d, _ := sink.RetryAfter(err); d != tc.wait {
				t.Errorf("Retry-After %v, want %v", d, tc.wait)
			}
			if !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q: want one line saying %q", err, tc.says)
			}
			// The next attempt goes through with the same token.
			noErrors(t, c.Send(ctx(t), rows(1, 50)))
			if n := r.sim.TokensIssued(r.id); n != 1 {
				t.Errorf("%d tokens, want 1", n)
			}
		})
	}
}

// TestTooLargeAnswerHalves: when the service refuses a batch as too large, each half is tried,
// and every row is delivered once.
func TestTooLargeAnswerHalves(t *testing.T) {
	r := startSim(t, lasim.Options{})
	c := r.client(t, r.withManagedIdentity(t, true), nil)
	r.sim.FailNext(1, 413, "")
	noErrors(t, c.Send(ctx(t), rows(10, 100)))
	if ids := storedIDs(t, r.sim); len(ids) != 10 {
		t.Errorf("stored %d rows, want 10", len(ids))
	}
	if n := r.sim.Requests(); n != 3 {
		t.Errorf("%d requests, want 3 (the refused one and two halves)", n)
	}
}

func TestNoRole(t *testing.T) {
	r := startSim(t, lasim.Options{})
	c := r.client(t, r.withManagedIdentity(t, false), nil)
	err := c.Send(ctx(t), rows(2, 50))[1]
	if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), `"Monitoring Metrics Publisher"`) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), r.sim.RuleID) {
		t.Errorf("message does not name the rule: %v", err)
	}
}

func TestWrongRuleOrStream(t *testing.T) {
	r := startSim(t, lasim.Options{Streams: []string{"Custom-Elsewhere"}})
	c := r.client(t, r.withManagedIdentity(t, true), nil)
	err := c.Send(ctx(t), rows(1, 50))[0]
	if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonRejected || !strings.Contains(err.Error(), "RuleId") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownManagedIdentity(t *testing.T) {
	r := startSim(t, lasim.Options{})
	t.Setenv("IDENTITY_ENDPOINT", r.sim.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", r.sim.IdentityHeader)
	c := r.client(t, Auth{ClientID: fmt.Sprintf("11111111-0000-0000-0000-%012d", miSeq.Add(1))}, nil)
	err := c.Send(ctx(t), rows(1, 50))[0]
	if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), "cannot get a token") {
		t.Fatalf("got %v", err)
	}
	if r.sim.Requests() != 0 {
		t.Errorf("an upload was made without a token")
	}
}

func TestClientSecret(t *testing.T) {
	const tenant, app, secret = "72f988bf-86f1-41af-91ab-2d7cd011db47", "aaaaaaaa-0000-0000-0000-000000000001", "s3cr3t~value.that.must.not.leak"
	r := startSim(t, lasim.Options{})
	r.sim.AddApp(tenant, app, secret, nil)
	r.sim.Grant(app)
	auth := Auth{TenantID: tenant, ClientID: app, ClientSecret: secret, AuthorityHost: r.sim.URL + "/", DisableInstanceDiscovery: true}
	c := r.client(t, auth, nil)
	noErrors(t, c.Send(ctx(t), rows(5, 50)))
	noErrors(t, c.Send(ctx(t), rows(5, 50)))
	if n := len(r.sim.Rows(stream)); n != 10 {
		t.Errorf("stored %d rows", n)
	}
	if n := r.sim.TokensIssued(app); n != 1 {
		t.Errorf("%d tokens, want 1", n)
	}

	auth.ClientSecret = "wrong-" + secret
	bad := r.client(t, auth, nil)
	err := bad.Send(ctx(t), rows(1, 50))[0]
	if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the secret is in the error: %v", err)
	}
}

func TestClientCertificate(t *testing.T) {
	const tenant, app = "72f988bf-86f1-41af-91ab-2d7cd011db47", "aaaaaaaa-0000-0000-0000-000000000002"
	r := startSim(t, lasim.Options{})
	pemBytes, der, err := lasim.AppCertificate()
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	r.sim.AddApp(tenant, app, "", der)
	r.sim.Grant(app)
	c := r.client(t, Auth{TenantID: tenant, ClientID: app, CertificateFile: certFile, AuthorityHost: r.sim.URL, DisableInstanceDiscovery: true}, nil)
	noErrors(t, c.Send(ctx(t), rows(3, 50)))
	if n := len(r.sim.Rows(stream)); n != 3 {
		t.Errorf("stored %d rows", n)
	}

	// Another key than the registered one is refused by the token endpoint.
	other, _, _ := lasim.AppCertificate()
	otherFile := filepath.Join(t.TempDir(), "other.pem")
	_ = os.WriteFile(otherFile, other, 0o600)
	bad := r.client(t, Auth{TenantID: tenant, ClientID: app, CertificateFile: otherFile, AuthorityHost: r.sim.URL, DisableInstanceDiscovery: true}, nil)
	if err := bad.Send(ctx(t), rows(1, 50))[0]; !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized {
		t.Fatalf("unregistered certificate: %v", err)
	}
}

// TestUntrustedCA: without the imitation's CA the TLS handshake fails, permanently, and the
// message says how to fix it.
func TestUntrustedCA(t *testing.T) {
	r := startSim(t, lasim.Options{})
	auth := r.withManagedIdentity(t, true)
	c := r.client(t, auth, func(c *Config) { c.TLS = tlsconf.Config{} })
	err := c.Send(ctx(t), rows(1, 50))[0]
	if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), "CAFile") {
		t.Fatalf("got %v", err)
	}
}

func TestCancelled(t *testing.T) {
	r := startSim(t, lasim.Options{})
	c := r.client(t, r.withManagedIdentity(t, true), nil)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, err := range c.Send(cctx, rows(3, 50)) {
		if err == nil || sink.IsPermanent(err) {
			t.Errorf("payload %d: %v, want a retryable error", i, err)
		}
	}
}

// TestSDKFake checks, with the SDK's own fake, what the azlogs client is handed: a JSON array
// even for one row, gzip-encoded with the header saying so.
func TestSDKFake(t *testing.T) {
	var got [][]byte
	var encodings []string
	srv := fake.Server{Upload: func(_ context.Context, rule, st string, logs []byte, o *azlogs.UploadOptions) (azfake.Responder[azlogs.UploadResponse], azfake.ErrorResponder) {
		body := logs
		enc := ""
		if o != nil && o.ContentEncoding != nil {
			enc = *o.ContentEncoding
			zr, err := gzip.NewReader(bytes.NewReader(logs))
			if err != nil {
				t.Errorf("not gzip: %v", err)
			} else {
				body, _ = io.ReadAll(zr)
			}
		}
		got = append(got, body)
		encodings = append(encodings, enc)
		var resp azfake.Responder[azlogs.UploadResponse]
		resp.SetResponse(204, azlogs.UploadResponse{}, nil)
		return resp, azfake.ErrorResponder{}
	}}
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.RuleID, cfg.Streams = "https://dce.example.ingest.monitor.azure.com", "dcr-0123456789abcdef0123456789abcdef", []string{stream}
	cfg.Credential = &azfake.TokenCredential{}
	c, err := newClient(cfg, nil, fake.NewServerTransport(&srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	long := `{"Description":"` + strings.Repeat("compressible ", 20) + `"}`
	noErrors(t, c.Send(context.Background(), [][]byte{Payload(nil, stream, []byte(long))}))
	if len(got) != 1 || string(got[0]) != "["+long+"]" || encodings[0] != "gzip" {
		t.Fatalf("got %q (%v)", got, encodings)
	}
}

func TestValidate(t *testing.T) {
	err := Config{Endpoint: "http://x", RuleID: "1234", Streams: []string{"Table_CL"}, Audience: "monitor", MaxBatchBytes: 2 << 20}.Validate()
	for _, want := range []string{"Endpoint", "RuleId", "stream \"Table_CL\"", "credential", "Audience", "MaxBatchBytes", "RequestTimeout", "Concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not report %s: %v", want, err)
		}
	}
	aerr := Auth{ClientSecret: "hunter2", CertificateFile: "/nonexistent", CertificatePassword: "pw"}.Validate("")
	for _, want := range []string{"exclude each other", "TenantId and ClientId", "ClientCertificate"} {
		if aerr == nil || !strings.Contains(aerr.Error(), want) {
			t.Errorf("Auth.Validate does not report %q: %v", want, aerr)
		}
	}
	if aerr != nil && (strings.Contains(aerr.Error(), "hunter2") || strings.Contains(aerr.Error(), "pw\"")) {
		t.Errorf("a secret is in the message: %v", aerr)
	}
	if err := (Auth{TenantID: "t"}).Validate(""); err == nil {
		t.Error("TenantId without a secret: want an error")
	}
	var _ azcore.TokenCredential = &azfake.TokenCredential{}
}

// TestSovereignAudience: the token is asked for the configured cloud's audience, and an
// endpoint of that cloud refuses a token for another.
func TestSovereignAudience(t *testing.T) {
	r := startSim(t, lasim.Options{Audience: AudienceGovernment})
	auth := r.withManagedIdentity(t, true)
	gov := r.client(t, auth, func(c *Config) { c.Audience = AudienceGovernment })
	noErrors(t, gov.Send(ctx(t), rows(1, 50)))

	auth = r.withManagedIdentity(t, true)
	public := r.client(t, auth, nil)
	if err := public.Send(ctx(t), rows(1, 50))[0]; sink.ReasonOf(err) != sink.ReasonUnauthorized {
		t.Fatalf("a public-cloud token was accepted by a government endpoint: %v", err)
	}
}

// BenchmarkSend measures rows a second through the whole client (batching, gzip, TLS, token)
// against the loopback imitation.
func BenchmarkSend(b *testing.B) {
	sim, err := lasim.Start(lasim.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	ca := filepath.Join(b.TempDir(), "ca.pem")
	_ = os.WriteFile(ca, sim.CAPEM, 0o600)
	sim.AddApp("t1", "bench-app", "bench-secret", nil)
	sim.Grant("bench-app")
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.RuleID, cfg.Streams = sim.URL, sim.RuleID, []string{stream}
	cfg.TLS = tlsconf.Config{CAFile: ca}
	hc, _ := HTTPClient(cfg)
	cfg.Credential, err = NewCredential(Auth{TenantID: "t1", ClientID: "bench-app", ClientSecret: "bench-secret", AuthorityHost: sim.URL, DisableInstanceDiscovery: true}, hc)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(cfg, hc, nil)
	if err != nil {
		b.Fatal(err)
	}
	payloads := rows(1000, 2000)
	b.SetBytes(int64(1000 * 2000))
	for b.Loop() {
		for _, err := range c.Send(context.Background(), payloads) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(payloads))/b.Elapsed().Seconds(), "rows/s")
}

// TestIdentityEndpointDown: an identity endpoint that cannot be reached now is worth another
// attempt, not a dead letter.
func TestIdentityEndpointDown(t *testing.T) {
	r := startSim(t, lasim.Options{})
	r.withManagedIdentity(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/msi/token"
	_ = l.Close()
	t.Setenv("IDENTITY_ENDPOINT", down)
	c := r.client(t, Auth{ClientID: r.id}, nil)
	err = c.Send(ctx(t), rows(1, 50))[0]
	if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnreachable {
		t.Fatalf("got %v (permanent %v)", err, sink.IsPermanent(err))
	}
}
