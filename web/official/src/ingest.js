// The KVS JS SDK sample page's ingestion mode, with AWS's clients only:
// storage set up with @aws-sdk/client-kinesis-video (CreateStream,
// UpdateMediaStorageConfiguration), the WEBRTC endpoint from
// GetSignalingChannelEndpoint, JoinStorageSession through
// @aws-sdk/client-kinesis-video-webrtc-storage once the SDK's
// SignalingClient is open (again after 6 s without an offer, as the sample
// does), and an answer that sends the (fake) camera as H.264 and the
// microphone as Opus.
import {
  KinesisVideoClient, GetSignalingChannelEndpointCommand,
  CreateSignalingChannelCommand, CreateStreamCommand, UpdateMediaStorageConfigurationCommand,
} from '@aws-sdk/client-kinesis-video';
import { KinesisVideoWebRTCStorageClient, JoinStorageSessionCommand } from '@aws-sdk/client-kinesis-video-webrtc-storage';
import { SignalingClient, Role } from 'amazon-kinesis-video-streams-webrtc';

// runIngest streams into the channel's storage session for cfg.seconds
// once connected, and resolves with the log; it rejects on the first
// failure.
export async function runIngest(cfg, log) {
  const kv = new KinesisVideoClient({ region: cfg.region, endpoint: cfg.endpoint, credentials: cfg.credentials });
  // A channel of its own: the other tests' peers stay off it.
  const channelARN = (await kv.send(new CreateSignalingChannelCommand({ ChannelName: cfg.channelName }))).ChannelARN;
  const stream = await kv.send(new CreateStreamCommand({ StreamName: `${cfg.channelName}-recordings`, DataRetentionInHours: 1 }));
  await kv.send(new UpdateMediaStorageConfigurationCommand({
    ChannelARN: channelARN, MediaStorageConfiguration: { Status: 'ENABLED', StreamARN: stream.StreamARN },
  }));
  log(`storage ENABLED into ${stream.StreamARN}`);
  const endpoints = await kv.send(new GetSignalingChannelEndpointCommand({
    ChannelARN: channelARN,
    SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS', 'WEBRTC'], Role: Role.MASTER },
  }));
  const ep = {};
  for (const e of endpoints.ResourceEndpointList) ep[e.Protocol] = e.ResourceEndpoint;
  log(`endpoints ${JSON.stringify(ep)}`);
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: true });
  const storage = new KinesisVideoWebRTCStorageClient({ region: cfg.region, endpoint: ep.WEBRTC, credentials: cfg.credentials });
  const signalingClient = new SignalingClient({
    channelARN, channelEndpoint: ep.WSS, role: Role.MASTER, region: cfg.region, credentials: cfg.credentials,
    systemClockOffset: kv.config.systemClockOffset || 0,
  });
  return new Promise((resolve, reject) => {
    const fail = (what) => (e) => reject(new Error(`ingest: ${what}: ${e && (e.message || e.type || e)}`));
    let pc = null;
    let offerTimer = null;
    const join = async () => {
      try {
        await storage.send(new JoinStorageSessionCommand({ channelArn: channelARN }));
        log('JoinStorageSession');
        offerTimer = setTimeout(join, 6000);
      } catch (e) { fail('JoinStorageSession')(e); }
    };
    signalingClient.on('error', fail('signaling error'));
    signalingClient.on('open', () => { log('master connected'); join(); });
    signalingClient.on('sdpOffer', async (offer, remoteClientId) => {
      try {
        clearTimeout(offerTimer);
        log(`offer from ${remoteClientId}`);
        if (pc) pc.close();
        pc = new RTCPeerConnection({});
        pc.addEventListener('icecandidate', ({ candidate }) => {
          if (candidate) signalingClient.sendIceCandidate(candidate, remoteClientId);
        });
        pc.addEventListener('connectionstatechange', () => {
          log(`storage peer connection ${pc.connectionState}`);
          if (pc.connectionState === 'connected') {
            setTimeout(async () => {
              const stats = [];
              (await pc.getStats()).forEach((r) => {
                if (r.type === 'outbound-rtp') stats.push(`${r.kind} packets=${r.packetsSent} frames=${r.framesEncoded ?? ''} encoder=${r.encoderImplementation ?? ''}`);
              });
              log(`sent: ${stats.join('; ')}`);
              resolve({ log: document.getElementById('log').textContent });
            }, cfg.seconds * 1000);
          }
        });
        await pc.setRemoteDescription(offer);
        for (const t of media.getTracks()) {
          const tr = pc.getTransceivers().find((x) => x.receiver.track.kind === t.kind && !x.sender.track);
          tr.sender.replaceTrack(t);
          tr.direction = 'sendonly';
          if (t.kind === 'video') {
            tr.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => /H264/.test(c.mimeType)));
          }
        }
        await pc.setLocalDescription(await pc.createAnswer());
        signalingClient.sendSdpAnswer(pc.localDescription, remoteClientId);
        log('answered');
      } catch (e) { fail('answering')(e); }
    });
    signalingClient.on('iceCandidate', (candidate) => {
      if (pc) pc.addIceCandidate(candidate).catch(fail('adding a candidate'));
    });
    signalingClient.open();
  });
}
