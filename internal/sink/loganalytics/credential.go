package loganalytics

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Auth says how the forwarder gets its tokens. With neither ClientSecret nor
// CertificateFile it is the function app's managed identity: the system-assigned one, or the
// user-assigned one whose client id is ClientID. With either, it is an app registration
// (TenantID, ClientID), which is how a workspace in another tenant is reached.
type Auth struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// CertificateFile is a PEM or PKCS#12 file holding the app's certificate and private key;
	// CertificatePassword decrypts a PKCS#12 file.
	CertificateFile     string
	CertificatePassword string
	// AuthorityHost is the Entra ID authority, for sovereign clouds:
	// https://login.microsoftonline.us/ or https://login.chinacloudapi.cn/. Default the
	// public cloud's.
	AuthorityHost string
	// DisableInstanceDiscovery skips Entra ID's instance discovery, for private or
	// disconnected clouds (Azure Stack) whose authority the public cloud does not know.
	DisableInstanceDiscovery bool
}

// Mode names the kind of credential Auth builds, for the start-up log.
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

// Validate reports every problem at once. Messages never carry the secret or password.
func (a Auth) Validate() error {
	var errs []error
	app := a.ClientSecret != "" || a.CertificateFile != ""
	if a.ClientSecret != "" && a.CertificateFile != "" {
		errs = append(errs, errors.New("loganalytics: ClientSecret and ClientCertificate exclude each other"))
	}
	if app && (a.TenantID == "" || a.ClientID == "") {
		errs = append(errs, errors.New("loganalytics: an app registration needs TenantId and ClientId beside its ClientSecret or ClientCertificate"))
	}
	if !app && a.TenantID != "" {
		errs = append(errs, errors.New("loganalytics: TenantId is only used with ClientSecret or ClientCertificate (a managed identity lives in the app's own tenant)"))
	}
	if a.CertificatePassword != "" && a.CertificateFile == "" {
		errs = append(errs, errors.New("loganalytics: ClientCertificatePassword is set without ClientCertificate"))
	}
	if a.CertificateFile != "" {
		if _, err := os.Stat(a.CertificateFile); err != nil {
			errs = append(errs, fmt.Errorf("loganalytics: ClientCertificate: %w", err))
		}
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("loganalytics: AuthorityHost %q: want an https URL such as https://login.microsoftonline.us/", a.AuthorityHost))
		}
	}
	if !app && (a.AuthorityHost != "" || a.DisableInstanceDiscovery) {
		errs = append(errs, errors.New("loganalytics: AuthorityHost and DisableInstanceDiscovery are only used with ClientSecret or ClientCertificate"))
	}
	return errors.Join(errs...)
}

// NewCredential builds the credential a validated Auth describes. hc carries the requests
// (nil: the SDK's default client); retries are left to the caller's policy, so that one
// Send stays one attempt.
func NewCredential(a Auth, hc *http.Client) (azcore.TokenCredential, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}
	if hc != nil {
		opts.Transport = hc
	}
	if a.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: a.AuthorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
	}
	switch {
	case a.ClientSecret != "":
		return azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, a.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: a.DisableInstanceDiscovery,
		})
	case a.CertificateFile != "":
		data, err := os.ReadFile(a.CertificateFile)
		if err != nil {
			return nil, fmt.Errorf("loganalytics: ClientCertificate: %w", err)
		}
		var pw []byte
		if a.CertificatePassword != "" {
			pw = []byte(a.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			// The parser's message names the format problem, never the password.
			return nil, fmt.Errorf("loganalytics: ClientCertificate %s: %w", a.CertificateFile, err)
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
