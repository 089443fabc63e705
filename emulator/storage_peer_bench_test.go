package emulator_test

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvssign/kvssign/internal/testmedia"
)

// sessionMeter measures what one op costs the whole process: CPU time and
// the heap a live session holds.
type sessionMeter struct {
	cpu    time.Duration
	heap   uint64
	before uint64
	ru     syscall.Rusage
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func (m *sessionMeter) report(b *testing.B) {
	media := time.Duration(b.N) * testmedia.Length
	b.ReportMetric(float64(m.cpu.Milliseconds())/media.Seconds(), "cpu-ms/media-s")
	b.ReportMetric(float64(m.heap)/float64(b.N)/1024, "heap-KB/session")
}

// BenchmarkStorageSession measures one storage session: a master joins,
// streams the 4 s test clip in real time, and the session ends (the next
// op's master replaces it). The master runs in this process too: subtract
// BenchmarkStorageBaseline, the same master streaming to a bare pion
// receiver, for the storage peer's own share. Run with -benchtime=3x.
func BenchmarkStorageSession(b *testing.B) {
	cfg := fastConfig()
	cfg.RecordingDir = b.TempDir()
	e := start(b, cfg)
	arn, ep := storageChannel(b, e, "bench")
	var m sessionMeter
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := heapInuse()
		cpu := processCPU()
		p := newMediaPeer(b, connectMaster(b, e, arn), true, "video", "audio")
		joinMaster(b, ep, arn)
		p.answer()
		p.waitConnected()
		p.stream(context.Background())
		if after := heapInuse(); after > before {
			m.heap += after - before
		}
		p.pc.Close()
		m.cpu += processCPU() - cpu
	}
	b.StopTimer()
	m.report(b)
	if recs := e.Recordings(); len(recs) < b.N-1 {
		b.Fatalf("%d recordings after %d sessions", len(recs), b.N)
	}
}

// BenchmarkStorageBaseline is BenchmarkStorageSession's master streaming
// the clip to a pion peer that reads and drops the packets, with no
// emulator in between.
func BenchmarkStorageBaseline(b *testing.B) {
	var m sessionMeter
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := heapInuse()
		cpu := processCPU()
		send, recv := baselinePair(b)
		send.stream(context.Background())
		if after := heapInuse(); after > before {
			m.heap += after - before
		}
		send.pc.Close()
		recv.Close()
		m.cpu += processCPU() - cpu
	}
	b.StopTimer()
	m.report(b)
}

// baselinePair connects a test master to a bare receiver in process.
func baselinePair(b *testing.B) (*mediaPeer, *webrtc.PeerConnection) {
	b.Helper()
	api := loopbackAPI(b)
	recv, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := recv.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			b.Fatal(err)
		}
	}
	recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
		}
	})
	send := &mediaPeer{t: b, api: api}
	for _, mime := range []string{webrtc.MimeTypeH264, webrtc.MimeTypeOpus} {
		tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime}, mime, "master")
		if err != nil {
			b.Fatal(err)
		}
		send.tracks = append(send.tracks, tr)
	}
	if send.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		b.Fatal(err)
	}
	connected := make(chan struct{})
	send.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	offer := complete(b, recv, true, webrtc.SessionDescription{})
	for _, tr := range send.tracks {
		if _, err := send.pc.AddTrack(tr); err != nil {
			b.Fatal(err)
		}
	}
	answer := complete(b, send.pc, false, offer)
	if err := recv.SetRemoteDescription(answer); err != nil {
		b.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		b.Fatal("the baseline pair did not connect")
	}
	return send, recv
}

// complete makes pc's offer (or its answer to remote) with every
// candidate in it.
func complete(b *testing.B, pc *webrtc.PeerConnection, offer bool, remote webrtc.SessionDescription) webrtc.SessionDescription {
	b.Helper()
	var sd webrtc.SessionDescription
	var err error
	if offer {
		sd, err = pc.CreateOffer(nil)
	} else {
		if err = pc.SetRemoteDescription(remote); err == nil {
			sd, err = pc.CreateAnswer(nil)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(sd); err != nil {
		b.Fatal(fmt.Errorf("SetLocalDescription: %w", err))
	}
	<-gathered
	return *pc.LocalDescription()
}
