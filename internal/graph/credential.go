package graph

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/defender-siem/forwarder/internal/azauth"
)

// Auth says how a tenant's tokens are obtained: an app registration in that tenant with a
// client secret or certificate, or the function app's managed identity, which only reaches
// the app's own tenant.
type Auth = azauth.Auth

// NewCredential builds the credential a validated Auth describes; hc carries its requests.
// A token request is tried three times: a poll that cannot sign in waits a whole schedule.
func NewCredential(a Auth, hc *http.Client) (azcore.TokenCredential, error) {
	c, err := azauth.NewCredential(a, hc, 2)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return c, nil
}

// HTTPClient returns a client that verifies TLS against the system roots plus the PEM
// certificates in caFile (none when empty).
func HTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("graph: CAFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("graph: CAFile %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}
