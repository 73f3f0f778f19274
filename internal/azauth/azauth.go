// Package azauth turns the identity settings shared by the Azure destinations and inputs (the
// Logs Ingestion API, the Graph Security API) into an azidentity credential: the function
// app's managed identity by default, or an app registration with a client secret or a
// certificate, which is how another tenant is reached.
package azauth

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

// Auth says how tokens are obtained. With neither ClientSecret nor CertificateFile it is the
// function app's managed identity: the system-assigned one, or the user-assigned one whose
// client id is ClientID; it only reaches the app's own tenant. With either, it is an app
// registration (TenantID, ClientID).
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

func (a Auth) app() bool { return a.ClientSecret != "" || a.CertificateFile != "" }

// Validate reports every problem at once, naming each setting with prefix before it
// (Graph__, say); no message carries the secret or the password.
func (a Auth) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	p := prefix
	if a.ClientSecret != "" && a.CertificateFile != "" {
		add("%sClientSecret and %sClientCertificate exclude each other", p, p)
	}
	if a.app() && (a.TenantID == "" || a.ClientID == "") {
		add("%sTenantId and %sClientId are required with a client secret or certificate (an app registration)", p, p)
	}
	if !a.app() && a.TenantID != "" {
		add("%sTenantId is only used with %sClientSecret or %sClientCertificate (a managed identity lives in the app's own tenant)", p, p, p)
	}
	if a.CertificatePassword != "" && a.CertificateFile == "" {
		add("%sClientCertificatePassword is set without %sClientCertificate", p, p)
	}
	if a.CertificateFile != "" {
		if _, err := os.Stat(a.CertificateFile); err != nil {
			add("%sClientCertificate: %w", p, err)
		}
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			add("%sAuthorityHost %q: want an https URL such as https://login.microsoftonline.us/", p, a.AuthorityHost)
		}
	}
	if !a.app() && (a.AuthorityHost != "" || a.DisableInstanceDiscovery) {
		add("%sAuthorityHost and %sDisableInstanceDiscovery are only used with %sClientSecret or %sClientCertificate", p, p, p, p)
	}
	return errors.Join(errs...)
}

// NewCredential builds the credential a validated Auth describes. hc carries its requests
// (nil: the SDK's default client); retries is the SDK's MaxRetries for token requests (-1
// for none, when the caller's own retry policy is the one that decides).
func NewCredential(a Auth, hc *http.Client, retries int32) (azcore.TokenCredential, error) {
	if err := a.Validate(""); err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: retries}}
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
			return nil, fmt.Errorf("ClientCertificate: %w", err)
		}
		var pw []byte
		if a.CertificatePassword != "" {
			pw = []byte(a.CertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			// The parser's message names the format problem, never the password.
			return nil, fmt.Errorf("ClientCertificate %s: %w", a.CertificateFile, err)
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
