// Package loopback keeps pion's WebRTC peers on the loopback interface, so
// that the emulator's storage peer, the demo and the tests never send
// media beyond the machine.
package loopback

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Restrict limits s to host candidates over UDP/IPv4 on the loopback
// interface (lo on Linux, lo0 on macOS and the BSDs), without mDNS.
func Restrict(s *webrtc.SettingEngine) {
	s.SetIncludeLoopbackCandidate(true)
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" || name == "lo0" })
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
}
