package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

func TestEmulateQuotaFlags(t *testing.T) {
	url, _, _, stop := startEmulate(t, "--create-channel", "q", "--log-level", "off",
		"--quota", "DescribeSignalingChannel/channel=1", "--max-connections", "10")
	defer stop()
	kv := kinesisvideo.New(kinesisvideo.Options{
		Region: "us-west-2", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	})
	describe := func() error {
		_, err := kv.DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("q")})
		return err
	}
	if err := describe(); err != nil {
		t.Fatalf("first Describe: %v", err)
	}
	// The burst is one call, so the second at once is over the quota
	// however slow the machine.
	var cle *kvtypes.ClientLimitExceededException
	if err := describe(); !errors.As(err, &cle) {
		t.Errorf("second Describe at --quota DescribeSignalingChannel/channel=1: %v; want ClientLimitExceededException", err)
	}
}

func TestEmulateBadLimitFlags(t *testing.T) {
	cases := []struct {
		args     []string
		inStderr string
	}{
		{[]string{"--quotas", "maybe"}, `--quotas "maybe": must be on or off`},
		{[]string{"--quota", "Describe=5"}, `--quota: emulator: quota "Describe=5": operation "Describe"`},
		{[]string{"--quota", "DescribeSignalingChannel=fast"}, "rate must be a positive number"},
		{[]string{"--max-connections", "-5"}, "--max-connections -5"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, append([]string{"emulate"}, tc.args...), strings.NewReader(""), &out, &errOut)
		cancel()
		if code != 2 || !strings.Contains(errOut.String(), tc.inStderr) {
			t.Errorf("emulate %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.inStderr)
		}
	}
}
