// GetIceServerConfig, served at the channel's HTTPS endpoint.

package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

type iceInput struct {
	ChannelARN *string
	ClientId   *string
	Service    *string
	Username   *string
}

type iceServer struct {
	Password string
	Ttl      int64
	Uris     []string
	Username string
}

type iceOutput struct{ IceServerList []iceServer }

const icePath = "/v1/get-ice-server-config"

func (e *Emulator) serveICE(w http.ResponseWriter, r *http.Request) {
	e.setCommonHeaders(w)
	rest := strings.TrimPrefix(r.URL.Path, "/ice/")
	token, tail, _ := strings.Cut(rest, "/")
	if token == "" || "/"+tail != icePath || r.Method != http.MethodPost {
		e.writeJSONError(w, errf(http.StatusNotFound, "UnknownOperationException", "no operation at %s %s; GetIceServerConfig is POST <HTTPS endpoint>%s", r.Method, clipValue(r.URL.Path), icePath))
		return
	}
	op := OpGetIceServerConfig
	e.stats.call(op)
	out, err := e.iceConfig(r)
	if err != nil {
		e.stats.fail(op)
		e.log.Debug("ice error", "err", err)
		e.writeJSONError(w, err)
		return
	}
	e.writeJSON(w, out)
}

func (e *Emulator) iceConfig(r *http.Request) (*iceOutput, error) {
	body, res, err := e.readSigned(r)
	if err != nil {
		return nil, err
	}
	if ae := e.faults.inject(OpGetIceServerConfig, false); ae != nil {
		e.stats.faults.Add(1)
		return nil, ae
	}
	var in iceInput
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	if in.ClientId != nil {
		if err := kvs.ValidateClientID(*in.ClientId); err != nil {
			return nil, invalidArg("%s", validationMessage(*in.ClientId, "clientId", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ of length 1 to 256, not starting with AWS_"))
		}
	}
	if in.Service != nil && *in.Service != "TURN" {
		return nil, invalidArg("%s", validationMessage(*in.Service, "service", "Member must satisfy enum value set: [TURN]"))
	}
	if in.Username != nil && (len(*in.Username) < 1 || len(*in.Username) > 256) {
		return nil, invalidArg("%s", validationMessage(*in.Username, "username", "Member must have length between 1 and 256"))
	}
	who, ae := e.caller(res.AccessKeyID)
	if ae != nil {
		return nil, ae
	}
	if ae := e.authorize(who, OpGetIceServerConfig, *in.ChannelARN); ae != nil {
		return nil, ae
	}
	ch, err := e.channelByARN(*in.ChannelARN)
	if err != nil {
		return nil, err
	}
	scheme, authority := e.baseFor(r)
	ttl := int64(e.cfg.ICETTL / time.Second)
	expiry := e.now().Add(e.cfg.ICETTL).Unix()
	user := strconv.FormatInt(expiry, 10) + ":" + base64.StdEncoding.EncodeToString([]byte("v1:"+ch.arn))
	e.listenMu.Lock()
	turns := e.turns
	e.listenMu.Unlock()
	out := &iceOutput{}
	for i := range 2 {
		var pw string
		var uris []string
		if len(turns) > i {
			pw = e.turnPassword(user)
			uris = turns[i].uris(e.turnHost())
		} else {
			b := make([]byte, 32)
			rand.Read(b)
			pw = base64.StdEncoding.EncodeToString(b)
			// Nothing answers TURN here; the URIs still carry a port, as
			// clients insist on one.
			hp := withPort(scheme, authority)
			uris = []string{
				"turn:" + hp + "?transport=udp",
				"turns:" + hp + "?transport=udp",
				"turns:" + hp + "?transport=tcp",
			}
		}
		out.IceServerList = append(out.IceServerList, iceServer{
			Password: pw,
			Ttl:      ttl,
			Uris:     uris,
			Username: user,
		})
	}
	return out, nil
}

// withPort returns authority with its port, the scheme's default if it has
// none.
func withPort(scheme, authority string) string {
	if _, _, err := net.SplitHostPort(authority); err == nil {
		return authority
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(authority, "[]"), port)
}
