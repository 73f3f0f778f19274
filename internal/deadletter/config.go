package deadletter

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/secret"
)

// Setting names. The storage account is found under a connection prefix, the way the Functions
// runtime resolves its own connections: the prefix itself may hold a connection string, or the
// nested settings `<prefix>__tableServiceUri` / `<prefix>__accountName` describe an
// identity-based connection.
const (
	SettingConnection  = "DeadLetter__Connection"
	SettingTable       = "DeadLetter__Table"
	SettingMaxAttempts = "DeadLetter__MaxAttempts"

	// DefaultConnection is the prefix used when DeadLetter__Connection is not set.
	DefaultConnection = "AzureWebJobsStorage"
	// DefaultTable is the table used when DeadLetter__Table is not set.
	DefaultTable = "DefenderDeadLetters"
	// DefaultMaxAttempts is how many replays a letter gets before it is parked.
	DefaultMaxAttempts = 10
)

// The well-known Azurite development account. Its key is public (documented by Microsoft for
// every storage emulator), so it is not a secret, but it is still redacted like any other key.
const (
	devAccountName = "devstoreaccount1"
	devAccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	devTableURL    = "http://127.0.0.1:10002/devstoreaccount1"
)

// DevelopmentConnectionString is what `UseDevelopmentStorage=true` stands for. aztables does not
// understand the shortcut, so ConfigFromSettings expands it to this.
const DevelopmentConnectionString = "DefaultEndpointsProtocol=http;AccountName=" + devAccountName +
	";AccountKey=" + devAccountKey + ";TableEndpoint=" + devTableURL + ";"

// Auth says how the store authenticates to the table service.
type Auth string

// The ways to reach the table service.
const (
	// AuthSharedKey signs requests with the account key of a connection string.
	AuthSharedKey Auth = "sharedkey"
	// AuthSAS appends the connection string's SharedAccessSignature to every request.
	AuthSAS Auth = "sas"
	// AuthManagedIdentity uses azidentity.ManagedIdentityCredential (ClientID selects a
	// user-assigned identity).
	AuthManagedIdentity Auth = "managedidentity"
	// AuthDefault uses azidentity.DefaultAzureCredential: environment, workload identity,
	// managed identity, then developer tools (Azure CLI…), which is what an identity-based
	// connection without a `__credential` setting gets.
	AuthDefault Auth = "default"
)

// Config says where dead letters are stored and how the store talks to Table storage.
//
// AccountKey and SAS are secrets: String and every error redact them.
type Config struct {
	// ConnectionName is the settings prefix the account came from, used in messages only.
	ConnectionName string
	// ServiceURL is the table endpoint, e.g. https://acct.table.core.windows.net.
	ServiceURL string
	// Auth selects the credential.
	Auth Auth
	// AccountName and AccountKey are the shared key (AuthSharedKey).
	AccountName string
	AccountKey  string
	// SAS is a shared access signature query string, without the leading '?' (AuthSAS).
	SAS string
	// ClientID selects a user-assigned managed identity (AuthManagedIdentity); empty means the
	// system-assigned one.
	ClientID string

	// Table is the table name: 3–63 letters and digits, not starting with a digit.
	Table string
	// MaxAttempts is how many replay attempts a letter gets before the replayer parks it.
	MaxAttempts int
	// MaxErrorLen caps the stored error text, in bytes (cut on a rune boundary).
	MaxErrorLen int

	// TryTimeout bounds one HTTP attempt to the table service.
	TryTimeout time.Duration
	// MaxRetries is how many times a failed request (5xx, 429, network) is retried inside the
	// caller's context. It is kept small: the invocation must answer 500 quickly when storage is
	// down, and the Functions host retries the whole batch.
	MaxRetries int
	// RetryDelay and MaxRetryDelay shape the back-off between those retries.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
}

// DefaultConfig returns the defaults without an account: ServiceURL and Auth must be filled.
func DefaultConfig() Config {
	return Config{
		ConnectionName: DefaultConnection,
		Table:          DefaultTable,
		MaxAttempts:    DefaultMaxAttempts,
		MaxErrorLen:    4096,
		TryTimeout:     10 * time.Second,
		MaxRetries:     3,
		RetryDelay:     200 * time.Millisecond,
		MaxRetryDelay:  2 * time.Second,
	}
}

// String describes the configuration with secrets redacted, safe to log.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deadletter{connection=%s url=%s auth=%s", c.ConnectionName, shownURL(c.ServiceURL), c.Auth)
	if c.AccountName != "" {
		fmt.Fprintf(&b, " account=%s", c.AccountName)
	}
	if c.AccountKey != "" {
		b.WriteString(" key=REDACTED")
	}
	if c.SAS != "" {
		b.WriteString(" sas=REDACTED")
	}
	if c.ClientID != "" {
		fmt.Fprintf(&b, " clientId=%s", c.ClientID)
	}
	fmt.Fprintf(&b, " table=%s maxAttempts=%d}", c.Table, c.MaxAttempts)
	return b.String()
}

// Validate reports every problem at once. No message contains a key or signature.
func (c Config) Validate() error {
	return errors.Join(c.validateSettings(), c.validateAccount())
}

// validateSettings checks everything but the account.
func (c Config) validateSettings() error {
	var errs []error
	if err := ValidateTableName(c.Table); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", SettingTable, err))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("%s: must be at least 1, got %d", SettingMaxAttempts, c.MaxAttempts))
	}
	if c.MaxErrorLen < 64 || c.MaxErrorLen > maxErrorLenLimit {
		errs = append(errs, fmt.Errorf("deadletter: MaxErrorLen must be between 64 and %d, got %d", maxErrorLenLimit, c.MaxErrorLen))
	}
	if c.TryTimeout <= 0 {
		errs = append(errs, errors.New("deadletter: TryTimeout must be positive"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("deadletter: MaxRetries must not be negative"))
	}
	if c.RetryDelay < 0 || c.MaxRetryDelay < c.RetryDelay {
		errs = append(errs, errors.New("deadletter: need 0 <= RetryDelay <= MaxRetryDelay"))
	}
	return errors.Join(errs...)
}

// validateAccount checks the storage account and credential.
func (c Config) validateAccount() error {
	var errs []error
	name := c.ConnectionName
	if name == "" {
		name = "connection"
	}
	if c.ServiceURL == "" {
		errs = append(errs, fmt.Errorf("%s: no table endpoint: set %s to a connection string or %s__accountName / %s__tableServiceUri", name, name, name, name))
	} else if u, err := url.Parse(c.ServiceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("%s: table endpoint %q is not an http(s) URL", name, shownURL(c.ServiceURL)))
	} else if u.Scheme == "http" && (c.Auth == AuthManagedIdentity || c.Auth == AuthDefault) {
		// Tokens must not travel in clear text; azcore refuses it too, later and less clearly.
		errs = append(errs, fmt.Errorf("%s: identity-based connections need an https endpoint, got %q", name, shownURL(c.ServiceURL)))
	}
	switch c.Auth {
	case AuthSharedKey:
		if c.AccountName == "" {
			errs = append(errs, fmt.Errorf("%s: connection string has no AccountName", name))
		}
		if c.AccountKey == "" {
			errs = append(errs, fmt.Errorf("%s: connection string has no AccountKey", name))
		}
	case AuthSAS:
		if c.SAS == "" {
			errs = append(errs, fmt.Errorf("%s: connection string has an empty SharedAccessSignature", name))
		}
	case AuthManagedIdentity, AuthDefault:
	default:
		errs = append(errs, fmt.Errorf("%s: unknown authentication %q", name, c.Auth))
	}
	return errors.Join(errs...)
}

// ValidateTableName applies Azure's table-name rules.
func ValidateTableName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("table name %q must be 3 to 63 characters long", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9':
			if i == 0 {
				return fmt.Errorf("table name %q must not start with a digit", name)
			}
		default:
			return fmt.Errorf("table name %q may hold only letters and digits", name)
		}
	}
	if strings.EqualFold(name, "tables") {
		return fmt.Errorf("table name %q is reserved", name)
	}
	return nil
}

// ConfigFromSettings reads the dead-letter settings through lookup (os.LookupEnv in production)
// and validates them. The account comes from the prefix named by DeadLetter__Connection,
// AzureWebJobsStorage by default:
//
//   - `<P>` = a connection string (AccountName/AccountKey, optionally TableEndpoint or
//     EndpointSuffix and DefaultEndpointsProtocol; or TableEndpoint/AccountName with
//     SharedAccessSignature), or `UseDevelopmentStorage=true` for the local emulator;
//   - otherwise `<P>__tableServiceUri` or `<P>__accountName` (→ https://<name>.table.core.windows.net)
//     with a managed identity when `<P>__credential=managedidentity` (`<P>__clientId` picks a
//     user-assigned one), or DefaultAzureCredential when no credential is named.
func ConfigFromSettings(lookup func(key string) (string, bool)) (Config, error) {
	cfg := DefaultConfig()
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var errs []error
	if p := get(SettingConnection); p != "" {
		cfg.ConnectionName = p
	}
	if t := get(SettingTable); t != "" {
		cfg.Table = t
	}
	if m := get(SettingMaxAttempts); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number", SettingMaxAttempts, m))
		} else {
			cfg.MaxAttempts = n
		}
	}

	p := cfg.ConnectionName
	accountOK := true
	if cs := get(p); cs != "" {
		if err := cfg.applyConnectionString(cs); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			accountOK = false
		}
	} else {
		uri, account := get(p+"__tableServiceUri"), get(p+"__accountName")
		switch {
		case uri != "":
			cfg.ServiceURL = strings.TrimRight(uri, "/")
		case account != "":
			cfg.ServiceURL = "https://" + account + ".table.core.windows.net"
			cfg.AccountName = account
		default:
			accountOK = false
			errs = append(errs, fmt.Errorf("%s: not set: give a connection string, UseDevelopmentStorage=true, or %s__accountName / %s__tableServiceUri for a managed identity", p, p, p))
		}
		cfg.ClientID = get(p + "__clientId")
		switch cred := get(p + "__credential"); {
		case strings.EqualFold(cred, "managedidentity"):
			cfg.Auth = AuthManagedIdentity
		case cred == "" && cfg.ClientID != "":
			// A client id only makes sense for a managed identity.
			cfg.Auth = AuthManagedIdentity
		case cred == "":
			cfg.Auth = AuthDefault
		default:
			errs = append(errs, fmt.Errorf("%s__credential: %q is not supported (use managedidentity or leave it unset)", p, cred))
			cfg.Auth = AuthDefault
		}
	}
	// Account errors found while parsing already say what is wrong; checking the half-filled
	// account again would only add noise.
	errs = append(errs, cfg.validateSettings())
	if accountOK {
		errs = append(errs, cfg.validateAccount())
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// applyConnectionString fills the account from a storage connection string. Errors name the
// keys that are wrong, never their values.
func (c *Config) applyConnectionString(cs string) error {
	if strings.EqualFold(strings.TrimRight(strings.ReplaceAll(cs, " ", ""), ";"), "UseDevelopmentStorage=true") {
		cs = DevelopmentConnectionString
	}
	kv := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return errors.New("connection string is malformed: expected Key=Value pairs separated by ';'")
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if strings.EqualFold(kv["usedevelopmentstorage"], "true") {
		// The shortcut may carry a DevelopmentStorageProxyUri, which this store does not support.
		return errors.New("UseDevelopmentStorage=true cannot be combined with other keys")
	}
	c.AccountName = kv["accountname"]
	c.AccountKey = kv["accountkey"]
	c.SAS = strings.TrimPrefix(kv["sharedaccesssignature"], "?")
	switch {
	case c.AccountKey != "":
		c.Auth = AuthSharedKey
	case c.SAS != "":
		c.Auth = AuthSAS
	default:
		return errors.New("connection string has neither AccountKey nor SharedAccessSignature")
	}
	if ep := kv["tableendpoint"]; ep != "" {
		c.ServiceURL = strings.TrimRight(ep, "/")
		return nil
	}
	if c.AccountName == "" {
		return errors.New("connection string has neither TableEndpoint nor AccountName")
	}
	proto := kv["defaultendpointsprotocol"]
	if proto == "" {
		proto = "https"
	}
	suffix := kv["endpointsuffix"]
	if suffix == "" {
		suffix = "core.windows.net"
	}
	c.ServiceURL = proto + "://" + c.AccountName + ".table." + suffix
	return nil
}

// shownURL is a URL as it may be shown: secret.URL masks a SAS signature with every other
// query value, and a password.
func shownURL(s string) string {
	shown, _ := secret.URL(s)
	return shown
}
