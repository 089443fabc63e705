// Package kvsapi is a minimal client for the two Kinesis Video Streams
// control-plane calls the demo, the examples' tests and the signaling tests
// need: CreateSignalingChannel and GetSignalingChannelEndpoint. Each is one
// SigV4-signed JSON POST. Programs talking to AWS should use awskvs (on the
// AWS SDK), which also resolves names, caches and retries.
package kvsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// Client calls the control plane at BaseURL (an emulator's URL, or
// https://kinesisvideo.REGION.amazonaws.com).
type Client struct {
	BaseURL     string
	Region      string
	Credentials sigv4.CredentialsProvider
	// HTTPClient sends the requests. If nil, a client with a 10-second
	// timeout.
	HTTPClient *http.Client
	// Sign, if set, is told about every request signed, with the access
	// key id used (never the secret or the token).
	Sign func(operation, accessKeyID string)
}

// Error is an error answer from the service.
type Error struct {
	Operation  string
	StatusCode int
	Type       string
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("kvsapi: %s: HTTP %d %s: %s", e.Operation, e.StatusCode, e.Type, e.Message)
}

// CreateChannel creates a SINGLE_MASTER signaling channel and returns its ARN.
func (c *Client) CreateChannel(ctx context.Context, name string) (string, error) {
	var out struct{ ChannelARN string }
	err := c.call(ctx, "CreateSignalingChannel", "/createSignalingChannel",
		map[string]any{"ChannelName": name, "ChannelType": "SINGLE_MASTER"}, &out)
	return out.ChannelARN, err
}

// Endpoint returns the channel's WSS endpoint for role.
func (c *Client) Endpoint(ctx context.Context, channelARN string, role kvs.Role) (string, error) {
	var out struct {
		ResourceEndpointList []struct{ Protocol, ResourceEndpoint string }
	}
	err := c.call(ctx, "GetSignalingChannelEndpoint", "/getSignalingChannelEndpoint", map[string]any{
		"ChannelARN": channelARN,
		"SingleMasterChannelEndpointConfiguration": map[string]any{
			"Protocols": []string{"WSS"},
			"Role":      string(role),
		},
	}, &out)
	if err != nil {
		return "", err
	}
	for _, e := range out.ResourceEndpointList {
		if e.Protocol == "WSS" {
			return e.ResourceEndpoint, nil
		}
	}
	return "", fmt.Errorf("kvsapi: GetSignalingChannelEndpoint: no WSS endpoint in the answer")
}

func (c *Client) call(ctx context.Context, op, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("kvsapi: %s: credentials: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("kvsapi: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	s := sigv4.Signer{Service: kvs.Service, Region: c.Region}
	if err := s.SignRequest(ctx, creds, req, hex.EncodeToString(sum[:])); err != nil {
		return fmt.Errorf("kvsapi: %s: %w", op, err)
	}
	if c.Sign != nil {
		c.Sign(op, creds.AccessKeyID)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("kvsapi: %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("kvsapi: %s: reading the answer: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Operation: op, StatusCode: resp.StatusCode}
		e.Type, _, _ = strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			for k, v := range m {
				if s, ok := v.(string); ok && strings.EqualFold(k, "message") {
					e.Message = s
				}
			}
		}
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("kvsapi: %s: answer is not JSON: %w", op, err)
	}
	return nil
}
