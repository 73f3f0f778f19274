package deadletter

import (
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/secret"
)

const testKey = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs=" // base64 of a recognisable secret

func TestConfigFromSettings(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]string
		want     Config // only the account fields, Table and MaxAttempts are compared
	}{
		{
			name:     "development storage",
			settings: map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "http://127.0.0.1:10002/devstoreaccount1",
				Auth: AuthSharedKey, AccountName: "devstoreaccount1", AccountKey: devAccountKey},
		},
		{
			name:     "development storage, other spelling",
			settings: map[string]string{"AzureWebJobsStorage": " usedevelopmentstorage=TRUE; "},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "http://127.0.0.1:10002/devstoreaccount1",
				Auth: AuthSharedKey, AccountName: "devstoreaccount1", AccountKey: devAccountKey},
		},
		{
			name: "account key connection string",
			settings: map[string]string{"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=" + testKey +
				";EndpointSuffix=core.windows.net"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.windows.net",
				Auth: AuthSharedKey, AccountName: "contoso", AccountKey: testKey},
		},
		{
			name:     "sovereign cloud suffix, protocol defaulted",
			settings: map[string]string{"AzureWebJobsStorage": "AccountName=contoso;AccountKey=" + testKey + ";EndpointSuffix=core.chinacloudapi.cn"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.chinacloudapi.cn",
				Auth: AuthSharedKey, AccountName: "contoso", AccountKey: testKey},
		},
		{
			name:     "explicit table endpoint",
			settings: map[string]string{"AzureWebJobsStorage": "AccountName=devstoreaccount1;AccountKey=" + testKey + ";TableEndpoint=http://127.0.0.1:4567/devstoreaccount1/"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "http://127.0.0.1:4567/devstoreaccount1",
				Auth: AuthSharedKey, AccountName: "devstoreaccount1", AccountKey: testKey},
		},
		{
			name:     "SAS connection string",
			settings: map[string]string{"AzureWebJobsStorage": "TableEndpoint=https://contoso.table.core.windows.net;SharedAccessSignature=sv=2022-11-02&ss=t&sig=abc%3D"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.windows.net",
				Auth: AuthSAS, SAS: "sv=2022-11-02&ss=t&sig=abc%3D"},
		},
		{
			name: "identity by account name, system-assigned",
			settings: map[string]string{"AzureWebJobsStorage__accountName": "contoso",
				"AzureWebJobsStorage__credential": "managedidentity"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.windows.net",
				Auth: AuthManagedIdentity, AccountName: "contoso"},
		},
		{
			name: "identity by table URI, user-assigned",
			settings: map[string]string{"AzureWebJobsStorage__tableServiceUri": "https://contoso.table.core.windows.net/",
				"AzureWebJobsStorage__credential": "ManagedIdentity", "AzureWebJobsStorage__clientId": "0f6e0d1c-1111-2222-3333-444455556666"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.windows.net",
				Auth: AuthManagedIdentity, ClientID: "0f6e0d1c-1111-2222-3333-444455556666"},
		},
		{
			name:     "identity without credential setting uses the default chain",
			settings: map[string]string{"AzureWebJobsStorage__accountName": "contoso"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.windows.net",
				Auth: AuthDefault, AccountName: "contoso"},
		},
		{
			name:     "client id alone means a user-assigned managed identity",
			settings: map[string]string{"AzureWebJobsStorage__accountName": "contoso", "AzureWebJobsStorage__clientId": "abc"},
			want: Config{ConnectionName: "AzureWebJobsStorage", ServiceURL: "https://contoso.table.core.windows.net",
				Auth: AuthManagedIdentity, AccountName: "contoso", ClientID: "abc"},
		},
		{
			name: "own connection, table and attempts",
			settings: map[string]string{
				"AzureWebJobsStorage":            "UseDevelopmentStorage=true",
				"DeadLetter__Connection":         "DeadLetterStorage",
				"DeadLetterStorage__accountName": "dlq",
				"DeadLetter__Table":              "Letters2",
				"DeadLetter__MaxAttempts":        "3",
			},
			want: Config{ConnectionName: "DeadLetterStorage", ServiceURL: "https://dlq.table.core.windows.net",
				Auth: AuthDefault, AccountName: "dlq", Table: "Letters2", MaxAttempts: 3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromSettings(mapLookup(tc.settings))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			want := tc.want
			if want.Table == "" {
				want.Table = DefaultTable
			}
			if want.MaxAttempts == 0 {
				want.MaxAttempts = DefaultMaxAttempts
			}
			d := DefaultConfig()
			want.MaxErrorLen, want.TryTimeout, want.MaxRetries, want.RetryDelay, want.MaxRetryDelay =
				d.MaxErrorLen, d.TryTimeout, d.MaxRetries, d.RetryDelay, d.MaxRetryDelay
			if got != want {
				t.Fatalf("\n got %#v\nwant %#v", got, want)
			}
			if s := got.String(); (got.AccountKey != "" && strings.Contains(s, got.AccountKey)) || (got.SAS != "" && strings.Contains(s, got.SAS)) {
				t.Fatalf("String() leaks a secret: %s", s)
			}
		})
	}
}

func TestConfigFromSettingsErrors(t *testing.T) {
	secret := "AccountKey=" + testKey
	cases := []struct {
		name     string
		settings map[string]string
		want     []string // every fragment must appear in the error
	}{
		{"nothing set", map[string]string{}, []string{"AzureWebJobsStorage: not set", "__accountName"}},
		{"named connection missing", map[string]string{"DeadLetter__Connection": "Dlq"}, []string{"Dlq: not set"}},
		{"malformed connection string", map[string]string{"AzureWebJobsStorage": "this is not one"}, []string{"malformed"}},
		{"no account name", map[string]string{"AzureWebJobsStorage": secret}, []string{"neither TableEndpoint nor AccountName"}},
		{"no key", map[string]string{"AzureWebJobsStorage": "AccountName=a;TableEndpoint=https://a.table.core.windows.net"}, []string{"neither AccountKey nor SharedAccessSignature"}},
		{"endpoint not a URL", map[string]string{"AzureWebJobsStorage": secret + ";AccountName=a;TableEndpoint=ftp://x?sig=" + testKey}, []string{"not an http(s) URL"}},
		{"identity over http", map[string]string{"AzureWebJobsStorage__tableServiceUri": "http://a.table.core.windows.net"}, []string{"need an https endpoint"}},
		{"unknown credential", map[string]string{"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__credential": "clientsecret"}, []string{"__credential", "not supported"}},
		{"development storage with extras", map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://x"}, []string{"cannot be combined"}},
		{
			"every problem at once",
			map[string]string{
				"AzureWebJobsStorage":     secret + ";AccountName=a",
				"DeadLetter__Table":       "9letters",
				"DeadLetter__MaxAttempts": "lots",
			},
			[]string{"DeadLetter__MaxAttempts", "not a whole number", "DeadLetter__Table", "must not start with a digit"},
		},
		{"zero attempts and short table", map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DeadLetter__MaxAttempts": "0", "DeadLetter__Table": "ab"},
			[]string{"at least 1", "3 to 63"}},
		{"table with a dash", map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DeadLetter__Table": "dead-letters"}, []string{"only letters and digits"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigFromSettings(mapLookup(tc.settings))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			for _, leak := range []string{testKey, devAccountKey, "secret-key"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error leaks a secret: %q", msg)
				}
			}
		})
	}
}

func TestValidateTableName(t *testing.T) {
	for name, ok := range map[string]bool{
		"abc": true, "DefenderDeadLetters": true, "a" + strings.Repeat("1", 62): true,
		"ab": false, "a" + strings.Repeat("1", 63): false, "1abc": false, "dead_letters": false,
		"Tables": false, "": false, "déad": false,
	} {
		if err := ValidateTableName(name); (err == nil) != ok {
			t.Errorf("ValidateTableName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestConfigValidateTimeouts(t *testing.T) {
	c := DefaultConfig()
	c.ServiceURL, c.Auth, c.AccountName, c.AccountKey = "https://a.table.core.windows.net", AuthSharedKey, "a", testKey
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with an account: %v", err)
	}
	c.TryTimeout, c.MaxRetries, c.RetryDelay, c.MaxRetryDelay, c.MaxErrorLen = 0, -1, time.Second, time.Millisecond, 1<<20
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"TryTimeout", "MaxRetries", "RetryDelay", "MaxErrorLen"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}

func TestConfigStringRedacts(t *testing.T) {
	c := DefaultConfig()
	c.ServiceURL = "https://a.table.core.windows.net/?sig=" + testKey
	c.Auth, c.AccountName, c.AccountKey, c.SAS = AuthSharedKey, "a", testKey, "sig="+testKey
	s := c.String()
	if strings.Contains(s, testKey) {
		t.Fatalf("String leaks: %s", s)
	}
	for _, w := range []string{"url=https://a.table.core.windows.net/?sig=" + secret.Mask + " ", "account=a", "key=REDACTED", "sas=REDACTED", "table=" + DefaultTable} {
		if !strings.Contains(s, w) {
			t.Errorf("String %q lacks %q", s, w)
		}
	}
}
