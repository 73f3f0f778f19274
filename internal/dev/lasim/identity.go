package lasim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// entraError answers like the Entra ID token endpoint (OAuth 2.0 error response with AADSTS codes).
func entraError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": code, "error_description": desc, "error_codes": []int{}, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z")})
	_, _ = w.Write(b)
}

// openID serves the tenant's OpenID configuration, which MSAL reads to find the token endpoint.
func (s *Server) openID(w http.ResponseWriter, r *http.Request, tenant string) {
	base := s.URL + "/" + tenant
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, _ := json.Marshal(map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "EU",
	})
	_, _ = w.Write(b)
}

// entraToken is the client-credentials grant: a client secret or a certificate-signed
// assertion (RS256 or PS256, as MSAL sends it).
func (s *Server) entraToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	scope := f.Get("scope")
	resource := ""
	for _, sc := range strings.Fields(scope) {
		if rest, ok := strings.CutSuffix(sc, "/.default"); ok {
			resource = rest
		}
	}
	if resource == "" {
		entraError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
		return
	}
	id := f.Get("client_id")
	s.mu.Lock()
	app, ok := s.apps[id]
	s.mu.Unlock()
	switch {
	case !ok || app.tenant != tenant:
		entraError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '"+id+"' was not found in the directory '"+tenant+"'.")
		return
	case f.Get("client_secret") != "":
		if app.secret == "" || f.Get("client_secret") != app.secret {
			entraError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
			return
		}
	case f.Get("client_assertion") != "":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS50027: client_assertion_type is not jwt-bearer.")
			return
		}
		if err := verifyAssertion(f.Get("client_assertion"), app.cert, id, s.URL+"/"+tenant+"/oauth2/v2.0/token"); err != nil {
			entraError(w, http.StatusUnauthorized, "invalid_client", "AADSTS700027: Client assertion failed signature validation: "+err.Error())
			return
		}
	default:
		entraError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	tok, exp := s.issue(id, resource)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	secs := int(time.Until(exp).Seconds())
	b, _ := json.Marshal(map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
	_, _ = w.Write(b)
}

func verifyAssertion(jwt string, certDER []byte, clientID, audience string) error {
	if certDER == nil {
		return errors.New("no certificate is registered for the application")
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("the registered certificate has no RSA key")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	var hdr struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := decodePart(parts[0], &hdr); err != nil {
		return err
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch hdr.Alg {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	default:
		err = errors.New("unsupported alg " + strconv.Quote(hdr.Alg))
	}
	if err != nil {
		return err
	}
	thumb := sha256.Sum256(certDER)
	// RFC 7515 says base64url; MSAL sends standard base64, which Entra ID accepts too.
	if hdr.X5tS256 != "" && hdr.X5tS256 != base64.RawURLEncoding.EncodeToString(thumb[:]) && hdr.X5tS256 != base64.StdEncoding.EncodeToString(thumb[:]) {
		return errors.New("x5t#S256 does not match the registered certificate")
	}
	switch {
	case claims.Aud != audience:
		return errors.New("aud " + strconv.Quote(claims.Aud) + " is not the token endpoint")
	case claims.Iss != clientID || claims.Sub != clientID:
		return errors.New("iss and sub must be the client id")
	case time.Unix(claims.Exp, 0).Before(time.Now()):
		return errors.New("the assertion has expired")
	}
	return nil
}

func decodePart(p string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serveIdentity is App Service's managed identity endpoint (api-version 2019-08-01).
func (s *Server) serveIdentity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"statusCode": status, "message": msg, "correlationId": randomHex(8)})
		_, _ = w.Write(b)
	}
	switch {
	case r.URL.Path != "/msi/token" || r.Method != http.MethodGet:
		fail(http.StatusNotFound, "not found")
		return
	case r.Header.Get("X-IDENTITY-HEADER") != s.IdentityHeader:
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER is missing or wrong.")
		return
	case q.Get("api-version") != "2019-08-01":
		fail(http.StatusBadRequest, "Unsupported api-version.")
		return
	case q.Get("resource") == "":
		fail(http.StatusBadRequest, "The resource parameter is missing.")
		return
	}
	clientID := q.Get("client_id")
	s.mu.Lock()
	_, ok := s.mis[clientID]
	s.mu.Unlock()
	if !ok {
		if clientID == "" {
			fail(http.StatusBadRequest, "No managed identity is assigned to this app.")
		} else {
			fail(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		}
		return
	}
	name := "system"
	if clientID != "" {
		name = clientID
	}
	tok, exp := s.issue(name, q.Get("resource"))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, _ := json.Marshal(map[string]any{
		"access_token": tok, "expires_on": strconv.FormatInt(exp.Unix(), 10), "resource": q.Get("resource"),
		"token_type": "Bearer", "client_id": clientID,
	})
	_, _ = w.Write(b)
}
