package graph

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Auth says how a tenant's tokens are obtained: an app registration in that tenant with a
// client secret or certificate, or, with neither, the function app's managed identity
// (user-assigned when ClientID is set), which only reaches the app's own tenant.
type Auth struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// CertificateFile is a PEM or PKCS#12 file with the app's certificate and key.
	CertificateFile     string
	CertificatePassword string
	// AuthorityHost is the Entra ID authority (national clouds); the public cloud's when empty.
	AuthorityHost string
	// DisableInstanceDiscovery skips Entra ID instance discovery (private clouds).
	DisableInstanceDiscovery bool
}

// Mode names the credential, for the start-up log.
func (a Auth) Mode() string {
	switch {
	case a.ClientSecret != "":
		return "client secret"
	case a.CertificateFile != "":
		return "client certificate"
	case a.ClientID != "":
		return "user-assigned managed identity"
	}
	return "system-assigned managed identity"
}

// Validate reports every problem at once, prefixed with the settings prefix; no message
// carries a secret.
func (a Auth) Validate(prefix string) error {
	var errs []error
	app := a.ClientSecret != "" || a.CertificateFile != ""
	if a.ClientSecret != "" && a.CertificateFile != "" {
		errs = append(errs, fmt.Errorf("%sClientSecret and %sClientCertificate exclude each other", prefix, prefix))
	}
	if app && (a.TenantID == "" || a.ClientID == "") {
		errs = append(errs, fmt.Errorf("%sTenantId and %sClientId are required with a client secret or certificate", prefix, prefix))
	}
	if a.CertificateFile != "" {
		if _, err := os.Stat(a.CertificateFile); err != nil {
			errs = append(errs, fmt.Errorf("%sClientCertificate: %w", prefix, err))
		}
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%sAuthorityHost %q: want an https URL such as https://login.microsoftonline.us/", prefix, a.AuthorityHost))
		}
	}
	return errors.Join(errs...)
}

// NewCredential builds the credential a validated Auth describes; hc carries its requests.
func NewCredential(a Auth, hc *http.Client) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{}
	if hc != nil {
		opts.Transport = hc
	}
	if a.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: a.AuthorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
	}
	opts.Retry = policy.RetryOptions{MaxRetries: 2}
	switch {
	case a.ClientSecret != "":
		return azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, a.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: a.DisableInstanceDiscovery,
		})
	case a.CertificateFile != "":
		data, err := os.ReadFile(a.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("graph: client certificate: %w", err)
		}
		var pw []byte
		if a.CertificatePassword != "" {
			pw = []byte(a.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, fmt.Errorf("graph: client certificate %s: %w", a.CertificateFile, err)
		}
		return azidentity.NewClientCertificateCredential(a.TenantID, a.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: a.DisableInstanceDiscovery,
		})
	}
	mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
	if a.ClientID != "" {
		mo.ID = azidentity.ClientID(a.ClientID)
	}
	return azidentity.NewManagedIdentityCredential(mo)
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
