// GetIceServerConfig: one SigV4-signed JSON POST to the channel's HTTPS
// endpoint (the SDK module for kinesisvideosignaling is not used).

package awskvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// An ICEServer is a TURN server with its credentials. Its JSON is that of
// an RTCIceServer, for an RTCPeerConnection's iceServers (and for pion's
// webrtc.ICEServer).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
	// Expires is when Username and Credential stop working.
	Expires time.Time `json:"-"`
}

// String describes s without its credential.
func (s ICEServer) String() string {
	c := ""
	if s.Credential != "" {
		c = " credential:<redacted>"
	}
	return fmt.Sprintf("{urls:%v username:%s%s expires:%s}", s.URLs, s.Username, c, s.Expires.UTC().Format(time.RFC3339))
}

// GoString is String, so %#v redacts too.
func (s ICEServer) GoString() string { return "awskvs.ICEServer" + s.String() }

// iceConfigPath is GetIceServerConfig's path under the HTTPS endpoint.
const iceConfigPath = "/v1/get-ice-server-config"

// maxICEBody bounds the answer to a request the Resolver sends itself.
const maxICEBody = 1 << 20

// ICEServers returns the channel's TURN servers and their credentials,
// from the cache while they have more than ICEMargin left. channel is a
// name or an ARN; clientID, optional, is the viewer asking (a master gives
// none).
func (r *Resolver) ICEServers(ctx context.Context, channel, clientID string) ([]ICEServer, error) {
	r.init()
	role := kvs.Master
	if clientID != "" {
		if err := kvs.ValidateClientID(clientID); err != nil {
			return nil, invalid("GetIceServerConfig", channel, err)
		}
		role = kvs.Viewer
	}
	c, err := r.retryGone(channel, func() (Connection, error) {
		c, err := r.resolve(ctx, "GetIceServerConfig", channel, role)
		if err != nil {
			return c, err
		}
		c.ICEServers, _, err = r.iceServers(ctx, c.ChannelARN, c.HTTPSEndpoint, clientID)
		if err != nil {
			return Connection{ChannelARN: c.ChannelARN}, err
		}
		return c, nil
	})
	return c.ICEServers, err
}

func (r *Resolver) iceServers(ctx context.Context, arn, httpsEndpoint, clientID string) ([]ICEServer, result, error) {
	// Stale TURN credentials are useless past their Ttl, so the stale
	// window never reaches beyond the margin kept before it.
	stale := min(r.maxStale(), ICEMargin)
	servers, res, err := r.ice.get(ctx, iceKey{arn, clientID}, r.now, stale, func(ctx context.Context) ([]ICEServer, time.Time, error) {
		return r.fetchICE(ctx, arn, httpsEndpoint, clientID)
	})
	if err != nil {
		return nil, res, err
	}
	// Callers may change the slice; the cache's copy stays as it was.
	out := make([]ICEServer, len(servers))
	for i, s := range servers {
		s.URLs = append([]string(nil), s.URLs...)
		out[i] = s
	}
	return out, res, nil
}

type iceRequest struct {
	ChannelARN string
	ClientId   string `json:",omitempty"`
	Service    string
}

type iceResponse struct {
	IceServerList []struct {
		Password string
		Ttl      int64
		Uris     []string
		Username string
	}
}

func (r *Resolver) fetchICE(ctx context.Context, arn, httpsEndpoint, clientID string) ([]ICEServer, time.Time, error) {
	a, _ := kvs.ParseChannelARN(arn)
	body, _ := json.Marshal(iceRequest{ChannelARN: arn, ClientId: clientID, Service: "TURN"})
	target := strings.TrimSuffix(httpsEndpoint, "/") + iceConfigPath
	var out iceResponse
	if err := r.signedPost(ctx, "GetIceServerConfig", arn, idempotent, target, a.Region, body, &out); err != nil {
		return nil, time.Time{}, err
	}
	now := r.now()
	var servers []ICEServer
	expires := time.Time{}
	for _, s := range out.IceServerList {
		if len(s.Uris) == 0 {
			continue
		}
		exp := now.Add(time.Duration(s.Ttl) * time.Second)
		servers = append(servers, ICEServer{URLs: s.Uris, Username: s.Username, Credential: s.Password, Expires: exp})
		if expires.IsZero() || exp.Before(expires) {
			expires = exp
		}
	}
	if len(servers) == 0 {
		return nil, now, nil
	}
	return servers, expires.Add(-ICEMargin), nil
}

// signedPost sends body as a SigV4-signed JSON POST to target, with the
// Resolver's deadlines, retries and typed errors, and decodes a 200
// answer into out (nil: the answer is not read). The SDK modules of the
// data-plane services are not used: one request each does not need them.
func (r *Resolver) signedPost(ctx context.Context, op, resource string, kind callKind, target, region string, body []byte, out any) error {
	if r.Credentials == nil {
		return errors.New("awskvs: resolver has no credentials provider")
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	signer := sigv4.Signer{Service: kvs.Service, Region: region, Trace: r.Trace,
		Clock: func() time.Time { return r.now().Add(r.ClockOffset) }}
	client := r.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	return r.call(ctx, op, resource, kind, func(ctx context.Context) error {
		creds, err := r.Credentials.Retrieve(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if err := signer.SignRequest(ctx, creds, req, hash); err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxICEBody))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return responseError(resp, data)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return &httpError{status: resp.StatusCode, api: &smithy.GenericAPIError{Code: "SerializationException", Message: "the answer is not the expected JSON: " + err.Error()}}
		}
		return nil
	})
}

// httpError is a non-2xx answer to a request the Resolver sent itself. It
// unwraps to a smithy.APIError, as the SDK's errors do.
type httpError struct {
	status int
	api    *smithy.GenericAPIError
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d: %s: %s", e.status, e.api.Code, e.api.Message)
}
func (e *httpError) Unwrap() error       { return e.api }
func (e *httpError) HTTPStatusCode() int { return e.status }

// responseError reads an AWS REST-JSON error: the code from the
// x-amzn-ErrorType header or the body's __type, the message from message
// or Message.
func responseError(resp *http.Response, body []byte) error {
	var b struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	_ = json.Unmarshal(body, &b)
	code := resp.Header.Get("X-Amzn-Errortype")
	if code == "" {
		code = b.Type
	}
	if code == "" {
		code = b.Code
	}
	code, _, _ = strings.Cut(code, ":")
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	msg := b.Message
	if msg == "" {
		msg = b.Message2
	}
	if msg == "" && code == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	return &httpError{status: resp.StatusCode, api: &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}}
}
