// Cross-origin rules: browsers may call the SigV4 APIs from any page (they
// carry no cookies, only signatures), but never the admin endpoints.

package emulator

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// corsExposed are the response headers a browser's script may read: the
// AWS SDK needs the request id, the error type and the Date header (it
// corrects clock skew from it).
const corsExposed = "x-amzn-RequestId, x-amzn-ErrorType, x-amzn-ErrorMessage, x-amz-request-id, x-amz-id-2, Date, Content-Length"

// corsMaxAge is how long a browser may cache a preflight's answer, in
// seconds; browsers cap it themselves (Chromium at 2 hours).
const corsMaxAge = "7200"

// checkOrigins reports the first entry of origins that is not an origin
// (scheme://host[:port], nothing else) or "*".
func checkOrigins(origins []string) error {
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("emulator: CORS origin %q: must be scheme://host[:port] (e.g. http://localhost:3000) or *", o)
		}
	}
	return nil
}

// originAllowed reports whether a page of origin may call the SigV4 APIs.
func (e *Emulator) originAllowed(origin string) bool {
	if len(e.cfg.CORSOrigins) == 0 || slices.Contains(e.cfg.CORSOrigins, "*") {
		return true
	}
	return slices.ContainsFunc(e.cfg.CORSOrigins, func(o string) bool { return strings.EqualFold(o, origin) })
}

// serveCORS sets the CORS headers of a SigV4 API's answer and answers a
// preflight itself. It reports whether the request is answered.
func (e *Emulator) serveCORS(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	h := w.Header()
	h.Add("Vary", "Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" || !e.originAllowed(origin) {
		if preflight {
			e.setCommonHeaders(w)
			e.writeJSONError(w, errf(http.StatusForbidden, "AccessDeniedException", "origin %s is not allowed: the emulator was started with --cors-origins %s", clipValue(origin), strings.Join(e.cfg.CORSOrigins, ",")))
			return true
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposed)
	if !preflight {
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if hs := r.Header.Get("Access-Control-Request-Headers"); hs != "" {
		// Whatever the SDK signs (authorization, x-amz-*, amz-sdk-*) must
		// be allowed; the signature, not CORS, guards these APIs.
		h.Set("Access-Control-Allow-Headers", hs)
	}
	h.Set("Access-Control-Max-Age", corsMaxAge)
	if strings.EqualFold(r.Header.Get("Access-Control-Request-Private-Network"), "true") && (len(e.cfg.CORSOrigins) > 0 || loopbackOrigin(origin)) {
		// A page on a public site calling this loopback emulator: Chromium
		// asks first. Granted only to origins listed with --cors-origins
		// (such as the KVS JS SDK's hosted sample page): the emulator
		// takes AWS's published example key by default, so any web site
		// could otherwise drive it from a developer's browser.
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	e.log.Debug("CORS preflight answered", "origin", clipValue(origin), "path", clipValue(r.URL.Path))
	e.setCommonHeaders(w)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// loopbackOrigin reports whether a page's origin is on this machine:
// localhost or a loopback address.
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// adminRefusal says why a request must not reach the admin endpoints, or
// returns "". Those endpoints have no authentication, so a web page the
// developer visits must not be able to drive them: no foreign Origin (or
// Sec-Fetch-Site), no content type a cross-site form or simple fetch can
// send on a state change, and a Host that is this machine, against DNS
// rebinding.
func (e *Emulator) adminRefusal(r *http.Request) string {
	if !e.ownHost(r.Host) {
		return fmt.Sprintf("Host %s is not this emulator's: use localhost, 127.0.0.1, [::1] or the emulator's own host name", clipValue(r.Host))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, scheme+"://"+r.Host) {
		return fmt.Sprintf("cross-origin requests are refused (Origin %s)", clipValue(o))
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return fmt.Sprintf("cross-site requests are refused (Sec-Fetch-Site %s)", clipValue(s))
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return ""
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return "Content-Type: must be application/json"
		case mt == "text/plain", mt == "application/x-www-form-urlencoded", mt == "multipart/form-data":
			return fmt.Sprintf("Content-Type %s: refused on a state change, as a cross-site form could send it; use application/json", mt)
		}
	}
	return ""
}

// ownHost reports whether host (a Host header) names this machine or the
// emulator's configured host name.
func (e *Emulator) ownHost(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	switch {
	case strings.EqualFold(name, "localhost"):
		return true
	case e.cfg.Hostname != "" && strings.EqualFold(name, e.cfg.Hostname):
		return true
	}
	ip := net.ParseIP(name)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	e.listenMu.Lock()
	defer e.listenMu.Unlock()
	if e.ln == nil {
		return false
	}
	tcp, ok := e.ln.Addr().(*net.TCPAddr)
	return ok && tcp.IP.Equal(ip)
}
