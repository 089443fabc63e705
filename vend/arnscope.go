// Which channel ARNs a caller may give. An ARN names the partition, region
// and account that the server signs for and calls, so a caller's ARN is
// held to the server's own before any AWS call.

package vend

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/kvssign/kvssign/kvs"
)

type arnScope struct {
	regions  []string // if empty, the region of home
	accounts []string // if empty, the account of home
	// home is a channel the server resolved by name: its ARN is in the
	// account and region the server's credentials work in.
	home atomic.Pointer[kvs.ChannelARN]
}

func newARNScope(c Config) *arnScope {
	s := &arnScope{regions: c.ARNRegions, accounts: c.ARNAccounts}
	if len(s.regions) == 0 && c.Region != "" {
		s.regions = []string{c.Region}
	}
	return s
}

// learn records the ARN of a channel resolved by name.
func (s *arnScope) learn(arn string) {
	if s.home.Load() != nil {
		return
	}
	if a, err := kvs.ParseChannelARN(arn); err == nil {
		s.home.CompareAndSwap(nil, &a)
	}
}

// check returns the rule a caller's ARN breaks, or "".
func (s *arnScope) check(a kvs.ChannelARN) string {
	home := s.home.Load()
	regions, accounts := s.regions, s.accounts
	if home != nil {
		if len(regions) == 0 {
			regions = []string{home.Region}
		}
		if len(accounts) == 0 {
			accounts = []string{home.Account}
		}
	}
	if len(regions) > 0 && !slices.Contains(regions, a.Region) {
		return fmt.Sprintf("region %q: must be one this server serves (%s)", a.Region, strings.Join(regions, ", "))
	}
	if p := partitionOf(a.Region); a.Partition != p {
		return fmt.Sprintf("partition %q: must be %s, the partition of %s", a.Partition, p, a.Region)
	}
	if len(accounts) > 0 && !slices.Contains(accounts, a.Account) {
		return fmt.Sprintf("account %q: must be one this server serves (%s)", a.Account, strings.Join(accounts, ", "))
	}
	return ""
}

// partitionOf returns the partition of an AWS region.
func partitionOf(region string) string {
	for _, p := range []struct{ prefix, partition string }{
		{"cn-", "aws-cn"}, {"us-gov-", "aws-us-gov"}, {"us-iso-", "aws-iso"}, {"us-isob-", "aws-iso-b"},
		{"eu-isoe-", "aws-iso-e"}, {"us-isof-", "aws-iso-f"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
