package emulator

import (
	"errors"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// failingInterceptor makes every peer connection of the API it is
// registered with fail to be made.
type failingInterceptor struct{}

func (failingInterceptor) NewInterceptor(string) (interceptor.Interceptor, error) {
	return nil, errors.New("emulator: test: no peer connections")
}

// BreakStoragePeer makes the storage peer fail to make peer connections,
// as it would when pion cannot, so that a test can follow the join error
// paths.
func BreakStoragePeer(e *Emulator) {
	reg := &interceptor.Registry{}
	reg.Add(failingInterceptor{})
	e.storage.mu.Lock()
	e.storage.api = webrtc.NewAPI(webrtc.WithInterceptorRegistry(reg))
	e.storage.mu.Unlock()
}

// LiveStorageSessions returns how many storage sessions e counts as live,
// the count that spares the relay the storage peer's lock.
func LiveStorageSessions(e *Emulator) int32 { return e.storage.live.Load() }

// OfferFromReplacedMaster makes two master links on the channel arn, the
// second replacing the first before the first has ended (the moment a
// newer JoinStorageSession makes), then lets the replaced link and the
// current one send their offers, in that order. It returns the two links'
// peer ids and ends both.
func OfferFromReplacedMaster(e *Emulator, arn string) (replaced, current string, err error) {
	ch, err := e.channelByARN(arn)
	if err != nil {
		return "", "", err
	}
	api, err := e.storage.peerAPI()
	if err != nil {
		return "", "", err
	}
	st := &e.storage
	var links [2]*peerLink
	for i := range links {
		l := &peerLink{peerID: newPeerID(), since: e.now(), ended: make(chan struct{})}
		st.mu.Lock()
		s, err := st.sessionLocked(e, ch)
		if err == nil {
			l.s = s
			err = l.newPeerConnection(api)
			s.master = l
		}
		st.mu.Unlock()
		if err != nil {
			return "", "", err
		}
		links[i] = l
	}
	defer func() {
		for _, l := range links {
			l.end("test over", false)
			l.pc.Close()
			l.s.linkEnded(l)
		}
	}()
	for _, l := range links {
		if err := l.offer(); err != nil {
			return "", "", err
		}
	}
	return links[0].peerID, links[1].peerID, nil
}
