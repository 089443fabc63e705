// STS: AssumeRole, GetSessionToken and GetCallerIdentity over the Query
// protocol (form POST to /, XML out). The credentials it issues are
// accepted by the whole emulator until they expire.

package emulator

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kvssign/kvssign/sigv4"
)

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		AssumedRoleUser struct {
			AssumedRoleID string `xml:"AssumedRoleId"`
			Arn           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
		Credentials      stsCredentials `xml:"Credentials"`
		PackedPolicySize int            `xml:"PackedPolicySize"`
	} `xml:"AssumeRoleResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type getSessionTokenResponse struct {
	XMLName xml.Name `xml:"GetSessionTokenResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Credentials stsCredentials `xml:"Credentials"`
	} `xml:"GetSessionTokenResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type getCallerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

func stsValidation(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "ValidationError", format, args...)
}

func (e *Emulator) serveSTS(w http.ResponseWriter, r *http.Request) {
	reqID := e.setCommonHeaders(w)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		e.writeXMLError(w, reqID, errf(http.StatusBadRequest, "MalformedInput", "could not read a request body of at most %d bytes", maxBody))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		e.writeXMLError(w, reqID, errf(http.StatusBadRequest, "MalformedInput", "the request body is not a valid form"))
		return
	}
	action := form.Get("Action")
	op := ""
	switch action {
	case OpAssumeRole, OpGetSessionToken, OpGetCallerIdentity:
		op = action
	default:
		e.writeXMLError(w, reqID, errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2011-06-15", clipValue(action)))
		return
	}
	e.stats.call(op)
	fail := func(err error) {
		e.stats.fail(op)
		e.log.Debug("sts error", "op", op, "err", err)
		e.writeXMLError(w, reqID, err)
	}
	if v := form.Get("Version"); v != "" && v != "2011-06-15" {
		fail(errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", op, clipValue(v)))
		return
	}
	sum := sha256.Sum256(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	res, err := e.stsVer.VerifyRequest(r.Context(), r, hex.EncodeToString(sum[:]))
	if err != nil {
		if ae := stsAuthError(err); ae != nil {
			err = ae
		}
		fail(err)
		return
	}
	if ae := e.faults.inject(op, true); ae != nil {
		e.stats.faults.Add(1)
		fail(ae)
		return
	}
	who, ae := e.caller(res.AccessKeyID)
	if ae != nil {
		fail(ae)
		return
	}
	caller := *who
	switch op {
	case OpAssumeRole:
		out, err := e.assumeRole(form, caller)
		if err != nil {
			fail(err)
			return
		}
		out.Xmlns, out.ResponseMetadata.RequestID = stsNamespace, reqID
		e.writeXML(w, out)
	case OpGetSessionToken:
		out, err := e.getSessionToken(form, caller)
		if err != nil {
			fail(err)
			return
		}
		out.Xmlns, out.ResponseMetadata.RequestID = stsNamespace, reqID
		e.writeXML(w, out)
	case OpGetCallerIdentity:
		var out getCallerIdentityResponse
		out.Xmlns, out.ResponseMetadata.RequestID = stsNamespace, reqID
		out.Result.Arn, out.Result.Account, out.Result.UserID = caller.arn, e.cfg.Account, caller.creds.AccessKeyID
		e.writeXML(w, out)
	}
}

// duration parses DurationSeconds against [lo, hi], defaulting to def.
func (e *Emulator) duration(form url.Values, def, lo, hi time.Duration) (time.Duration, error) {
	s := form.Get("DurationSeconds")
	if s == "" {
		return min(max(def, lo), hi), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	var ne *strconv.NumError
	if err != nil && !(errors.As(err, &ne) && ne.Err == strconv.ErrRange) {
		return 0, stsValidation("%s", validationMessage(s, "durationSeconds", "Member must be an integer"))
	}
	// Compared in seconds: n seconds as a time.Duration may overflow.
	if loS := int64((lo + time.Second - 1) / time.Second); n < loS {
		return 0, stsValidation("%s", validationMessage(s, "durationSeconds", fmt.Sprintf("Member must have value greater than or equal to %d", loS)))
	}
	if hiS := int64(hi / time.Second); n > hiS {
		return 0, stsValidation("%s", validationMessage(s, "durationSeconds", fmt.Sprintf("Member must have value less than or equal to %d", hiS)))
	}
	return time.Duration(n) * time.Second, nil
}

// issue makes and stores new temporary credentials, limited by g.
// issue makes credentials valid for d for the identity who describes
// (its creds are filled in here).
func (e *Emulator) issue(d time.Duration, who issued) sigv4.Credentials {
	tok := make([]byte, 120)
	rand.Read(tok)
	sec := make([]byte, 30)
	rand.Read(sec)
	exp := e.now().Add(d).UTC().Truncate(time.Second)
	c := sigv4.Credentials{
		AccessKeyID:     "ASIA" + randomAlnum(16, upperAlnum),
		SecretAccessKey: base64.StdEncoding.EncodeToString(sec),
		SessionToken:    "IQoJb3JpZ2luX2VtdWxhdG9y" + base64.StdEncoding.EncodeToString(tok),
		Expires:         exp,
	}
	who.creds = c
	e.creds.add(who, e.now())
	return c
}

func toXMLCreds(c sigv4.Credentials) stsCredentials {
	return stsCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: c.Expires.UTC().Format("2006-01-02T15:04:05Z")}
}

func validSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			return false
		}
	}
	return true
}

func (e *Emulator) assumeRole(form url.Values, caller issued) (*assumeRoleResponse, error) {
	roleARN := form.Get("RoleArn")
	if roleARN == "" {
		return nil, stsValidation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	}
	parts := strings.SplitN(roleARN, ":", 6)
	if len(roleARN) < 20 || len(roleARN) > 2048 || len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") || len(parts[5]) < 6 {
		return nil, stsValidation("%s is not a valid role ARN: want arn:aws:iam::ACCOUNT:role/NAME", clipValue(roleARN))
	}
	sessionName := form.Get("RoleSessionName")
	if sessionName == "" {
		return nil, stsValidation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	}
	if !validSessionName(sessionName) {
		return nil, stsValidation("%s", validationMessage(sessionName, "roleSessionName", "Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"))
	}
	if caller.scoped && !caller.grant.allows("sts:AssumeRole", roleARN) {
		return nil, e.deny(&caller, "AccessDenied", "sts:AssumeRole", roleARN)
	}
	def, hi := time.Hour, 12*time.Hour
	if e.cfg.STSDefaultDuration > 0 {
		def = e.cfg.STSDefaultDuration
	}
	if e.cfg.STSMaxDuration > 0 {
		hi = e.cfg.STSMaxDuration
	}
	if caller.kind == credRole && hi > time.Hour {
		// Role chaining is limited to one hour.
		if d := form.Get("DurationSeconds"); d != "" {
			if n, err := strconv.ParseInt(d, 10, 64); err == nil && n > 3600 {
				return nil, stsValidation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
			}
		}
		hi = time.Hour
	}
	d, err := e.duration(form, def, e.cfg.STSMinDuration, hi)
	if err != nil {
		return nil, err
	}
	session, err := sessionPolicy(form)
	if err != nil {
		return nil, err
	}
	roleName := strings.TrimPrefix(parts[5], "role/")
	if i := strings.LastIndexByte(roleName, '/'); i >= 0 {
		roleName = roleName[i+1:]
	}
	arn := "arn:aws:sts::" + parts[4] + ":assumed-role/" + roleName + "/" + sessionName
	// The configured identity policy stands in for the role's own; a
	// session policy narrows it. A chained role's session starts afresh
	// from the role's policy, as in AWS: the caller's session policy does
	// not carry over, which is why scoped credentials must be allowed
	// sts:AssumeRole to chain at all.
	c := e.issue(d, issued{kind: credRole, arn: arn, grant: grant(nil).with(e.identity).with(session), scoped: session != nil})
	out := &assumeRoleResponse{}
	out.Result.AssumedRoleUser.Arn = arn
	sum := sha256.Sum256([]byte(roleARN))
	out.Result.AssumedRoleUser.AssumedRoleID = "AROA" + strings.ToUpper(hex.EncodeToString(sum[:8])) + ":" + sessionName
	out.Result.Credentials = toXMLCreds(c)
	e.log.Info("sts issued credentials", "op", OpAssumeRole, "accessKeyId", c.AccessKeyID, "expires", c.Expires)
	return out, nil
}

func (e *Emulator) getSessionToken(form url.Values, caller issued) (*getSessionTokenResponse, error) {
	if caller.kind != credLongTerm {
		return nil, errf(http.StatusForbidden, "AccessDenied", "Cannot call GetSessionToken with session credentials")
	}
	def, hi := 12*time.Hour, 36*time.Hour
	if e.cfg.STSDefaultDuration > 0 {
		def = e.cfg.STSDefaultDuration
	}
	if e.cfg.STSMaxDuration > 0 {
		hi = e.cfg.STSMaxDuration
	}
	d, err := e.duration(form, def, e.cfg.STSMinDuration, hi)
	if err != nil {
		return nil, err
	}
	c := e.issue(d, issued{kind: credSession, arn: caller.arn, grant: caller.grant})
	out := &getSessionTokenResponse{}
	out.Result.Credentials = toXMLCreds(c)
	e.log.Info("sts issued credentials", "op", OpGetSessionToken, "accessKeyId", c.AccessKeyID, "expires", c.Expires)
	return out, nil
}

// IssueCredentials returns new temporary credentials valid for d, as if
// from GetSessionToken, without a round trip: they are limited by
// [Config.Policy] as the long-term credentials are. d is not bounded by
// the STS limits, so tests can use a second.
func (e *Emulator) IssueCredentials(d time.Duration) sigv4.Credentials {
	return e.issue(d, issued{kind: credSession, arn: "arn:aws:iam::" + e.cfg.Account + ":user/" + longTermUser, grant: grant(nil).with(e.identity)})
}

// sessionPolicy parses AssumeRole's Policy parameter: nil if absent,
// ValidationError for a value STS's model refuses, MalformedPolicyDocument
// for a document that is not a policy the emulator can evaluate.
func sessionPolicy(form url.Values) (*policy, error) {
	vals, ok := form["Policy"]
	if !ok {
		return nil, nil
	}
	doc := vals[0]
	switch n := utf8.RuneCountInString(doc); {
	case n < 1:
		return nil, stsValidation("%s", validationMessage(doc, "policy", "Member must have length greater than or equal to 1"))
	case n > maxSessionPolicyChars:
		return nil, stsValidation("%s", validationMessage(doc, "policy", fmt.Sprintf("Member must have length less than or equal to %d", maxSessionPolicyChars)))
	}
	for _, r := range doc {
		if !(r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xff) {
			return nil, stsValidation("%s", validationMessage(doc, "policy", "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"))
		}
	}
	p, err := parsePolicy(doc, 4*maxSessionPolicyChars)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "MalformedPolicyDocument", "session policy: %v", err)
	}
	return p, nil
}
