package azauth

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		auth Auth
		want []string // substrings of the error; none means valid
		mode string
	}{
		{"system identity", Auth{}, nil, "system-assigned managed identity"},
		{"user-assigned identity", Auth{ClientID: "c"}, nil, "user-assigned managed identity"},
		{"app with secret", Auth{TenantID: "t", ClientID: "c", ClientSecret: "hunter22", AuthorityHost: "https://login.microsoftonline.us/"}, nil, "client secret"},
		{"secret without tenant", Auth{ClientID: "c", ClientSecret: "hunter22"}, []string{"Graph__TenantId and Graph__ClientId are required"}, "client secret"},
		{"both secret and certificate", Auth{TenantID: "t", ClientID: "c", ClientSecret: "hunter22", CertificateFile: "/nonexistent"},
			[]string{"exclude each other", "Graph__ClientCertificate: "}, "client secret"},
		{"tenant with an identity", Auth{TenantID: "t"}, []string{"Graph__TenantId is only used with"}, "system-assigned managed identity"},
		{"password without certificate", Auth{CertificatePassword: "pw-secret"}, []string{"Graph__ClientCertificatePassword is set without"}, "system-assigned managed identity"},
		{"authority not https", Auth{TenantID: "t", ClientID: "c", ClientSecret: "hunter22", AuthorityHost: "http://login"}, []string{"Graph__AuthorityHost"}, "client secret"},
		{"authority with an identity", Auth{AuthorityHost: "https://login.microsoftonline.us/"}, []string{"only used with"}, "system-assigned managed identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.auth.Validate("Graph__")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid settings refused: %v", err)
				}
			} else if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			if err != nil && (strings.Contains(err.Error(), "hunter22") || strings.Contains(err.Error(), "pw-secret")) {
				t.Errorf("error quotes a secret: %v", err)
			}
			if got := tt.auth.Mode(); got != tt.mode {
				t.Errorf("Mode() = %q, want %q", got, tt.mode)
			}
		})
	}
}

func TestNewCredentialRefusesInvalid(t *testing.T) {
	if _, err := NewCredential(Auth{ClientSecret: "hunter22"}, nil, -1); err == nil {
		t.Fatal("a secret without tenant and client built a credential")
	}
	if _, err := NewCredential(Auth{}, nil, -1); err != nil {
		t.Fatalf("managed identity: %v", err)
	}
}
