package awskvs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ConfigOptions selects where [LoadConfig] finds credentials, the region
// and the endpoints. The zero value means the standard chain and the
// region from the environment or the default profile.
type ConfigOptions struct {
	// Profile is the shared config profile; if empty, AWS_PROFILE or
	// "default".
	Profile string
	// Region overrides AWS_REGION and the profile's region.
	Region string
	// EndpointURL, if set, is the base URL of the control plane and of STS,
	// as the aws CLI's --endpoint-url: http://127.0.0.1:PORT for a local
	// emulator.
	EndpointURL string
	// RoleARN, if set, is a role to assume with STS using the credentials
	// the chain found.
	RoleARN string
	// ExternalID is passed to AssumeRole when set.
	ExternalID string
	// RoleSessionName names the role session; if empty, "kvssign-" and
	// the current Unix time.
	RoleSessionName string
	// RoleDuration is the role session's lifetime; if zero, STS's default
	// (one hour).
	RoleDuration time.Duration
	// HTTPClient sends every request of the SDK. If nil, the SDK's client
	// with a 30-second limit on each request, so no call waits forever.
	HTTPClient aws.HTTPClient
}

// DefaultHTTPTimeout bounds each SDK request when ConfigOptions.HTTPClient
// is nil.
const DefaultHTTPTimeout = 30 * time.Second

var roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)

// LoadConfig loads an aws.Config from the standard chain (environment,
// shared config and credentials files and their profiles, SSO, web
// identity, ECS, EC2 instance metadata) with o applied, then any extra
// options. Credentials are not retrieved yet. With o.RoleARN the
// credentials become those of the assumed role, renewed by STS as they
// expire.
//
// The credentials cache keeps the SDK's real expiry times (no expiry
// window); [Credentials] renews ahead of expiry instead, by the window its
// signer needs.
func LoadConfig(ctx context.Context, o ConfigOptions, extra ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithCredentialsCacheOptions(func(c *aws.CredentialsCacheOptions) { c.ExpiryWindow = 0 }),
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		if !regionRE.MatchString(o.Region) {
			return aws.Config{}, badConfig(fmt.Sprintf("region %q: must look like us-west-2 (lower-case letters, digits and '-')", o.Region), nil)
		}
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.EndpointURL != "" {
		if err := checkEndpointURL(o.EndpointURL); err != nil {
			return aws.Config{}, err
		}
		opts = append(opts, config.WithBaseEndpoint(o.EndpointURL))
	}
	if o.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(o.HTTPClient))
	} else {
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(DefaultHTTPTimeout)))
	}
	if o.RoleARN != "" && !roleARNRE.MatchString(o.RoleARN) {
		return aws.Config{}, badConfig(fmt.Sprintf("role ARN %q: must look like arn:aws:iam::123456789012:role/NAME", o.RoleARN), nil)
	}
	if o.ExternalID != "" && o.RoleARN == "" {
		return aws.Config{}, badConfig("external id: is only used with a role ARN", nil)
	}
	if o.RoleDuration < 0 || o.RoleDuration%time.Second != 0 {
		// Not bounded to STS's 15m to 12h here: the emulator accepts
		// shorter sessions for tests, and STS words its own limits.
		return aws.Config{}, badConfig(fmt.Sprintf("role duration %v: must be whole seconds (AWS allows 15m to 12h)", o.RoleDuration), nil)
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, extra...)...)
	var pe config.SharedConfigProfileNotExistError
	if errors.As(err, &pe) {
		return aws.Config{}, badConfig(fmt.Sprintf("profile %q: not found in the shared config or credentials files", pe.Profile), err)
	}
	if err != nil {
		return aws.Config{}, fmt.Errorf("awskvs: loading AWS configuration: %w", err)
	}
	if o.RoleARN != "" {
		if cfg.Region == "" {
			return aws.Config{}, badConfig("no region for STS to assume the role: set the region (AWS_REGION or the profile's)", nil)
		}
		name := o.RoleSessionName
		if name == "" {
			name = "kvssign-" + strconv.FormatInt(time.Now().Unix(), 10)
		}
		p := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), o.RoleARN, func(a *stscreds.AssumeRoleOptions) {
			a.RoleSessionName = name
			if o.ExternalID != "" {
				a.ExternalID = aws.String(o.ExternalID)
			}
			a.Duration = o.RoleDuration
		})
		cfg.Credentials = aws.NewCredentialsCache(p)
	}
	return cfg, nil
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func checkEndpointURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return badConfig(fmt.Sprintf("endpoint URL %q: must be http:// or https:// and a host, like http://127.0.0.1:4566", s), nil)
	}
	return nil
}

// badConfig is an invalid ConfigOptions value: an [*Error] of kind
// [ErrInvalidArgument].
func badConfig(msg string, err error) error {
	return &Error{Op: "LoadConfig", Kind: ErrInvalidArgument, Message: msg, Err: err}
}
