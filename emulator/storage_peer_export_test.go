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
