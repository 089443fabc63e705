// A KVS WebRTC peer written the way the KVS JS SDK's sample page works,
// using only AWS's clients, so that the emulator is tested against the code
// real browser apps run: DescribeSignalingChannel and
// GetSignalingChannelEndpoint through @aws-sdk/client-kinesis-video,
// GetIceServerConfig through @aws-sdk/client-kinesis-video-signaling at the
// channel's HTTPS endpoint, and the SDK's SignalingClient, which presigns
// its WebSocket URL with the SDK's own SigV4RequestSigner. The master
// answers offers; the viewer offers, and a data channel carries one
// message each way.
import { KinesisVideoClient, DescribeSignalingChannelCommand, GetSignalingChannelEndpointCommand } from '@aws-sdk/client-kinesis-video';
import { KinesisVideoSignalingClient, GetIceServerConfigCommand } from '@aws-sdk/client-kinesis-video-signaling';
import { SignalingClient, Role } from 'amazon-kinesis-video-streams-webrtc';
import { runIngest } from './ingest.js';

const logEl = document.getElementById('log');
function log(msg) {
  logEl.textContent += `${new Date().toISOString()} ${msg}\n`;
}

// resolveChannel does what the sample page does before signaling: find the
// channel's ARN, its endpoints for the role, and its ICE servers.
async function resolveChannel(cfg) {
  const kv = new KinesisVideoClient({ region: cfg.region, endpoint: cfg.endpoint, credentials: cfg.credentials });
  const described = await kv.send(new DescribeSignalingChannelCommand({ ChannelName: cfg.channelName }));
  const channelARN = described.ChannelInfo.ChannelARN;
  log(`channel ARN ${channelARN}`);
  const endpoints = await kv.send(new GetSignalingChannelEndpointCommand({
    ChannelARN: channelARN,
    SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: cfg.role },
  }));
  const byProtocol = {};
  for (const ep of endpoints.ResourceEndpointList) byProtocol[ep.Protocol] = ep.ResourceEndpoint;
  log(`endpoints ${JSON.stringify(byProtocol)}`);
  const signaling = new KinesisVideoSignalingClient({ region: cfg.region, endpoint: byProtocol.HTTPS, credentials: cfg.credentials });
  const ice = await signaling.send(new GetIceServerConfigCommand({
    ChannelARN: channelARN,
    ClientId: cfg.role === Role.VIEWER ? cfg.clientId : undefined,
  }));
  const iceServers = ice.IceServerList.map((s) => ({ urls: s.Uris, username: s.Username, credential: s.Password }));
  log(`${iceServers.length} ICE servers: ${iceServers.map((s) => s.urls.join(' ')).join(', ')}`);
  return { channelARN, byProtocol, iceServers, clockOffset: kv.config.systemClockOffset || 0 };
}

// runPeer connects as cfg.role and resolves with what the data channel
// brought, or rejects on the first failure.
window.runPeer = async function runPeer(cfg) {
  const ch = await resolveChannel(cfg);
  const signalingClient = new SignalingClient({
    channelARN: ch.channelARN,
    channelEndpoint: ch.byProtocol.WSS,
    role: cfg.role,
    clientId: cfg.role === Role.VIEWER ? cfg.clientId : undefined,
    region: cfg.region,
    credentials: cfg.credentials,
    systemClockOffset: ch.clockOffset,
  });
  const pcConfig = { iceServers: ch.iceServers, iceTransportPolicy: cfg.relayOnly ? 'relay' : 'all' };
  return new Promise((resolve, reject) => {
    const fail = (what) => (e) => reject(new Error(`${cfg.role}: ${what}: ${e && (e.message || e.type || e)}`));
    signalingClient.on('error', fail('signaling error'));
    signalingClient.on('close', () => log('signaling closed'));
    const peers = {};
    const newPeer = (remoteClientId) => {
      const pc = new RTCPeerConnection(pcConfig);
      pc.addEventListener('icecandidate', ({ candidate }) => {
        if (candidate) signalingClient.sendIceCandidate(candidate, remoteClientId);
      });
      pc.addEventListener('iceconnectionstatechange', () => log(`ICE ${pc.iceConnectionState}`));
      return pc;
    };
    const onMessage = (dc, reply) => dc.addEventListener('message', (m) => {
      log(`data channel received ${m.data}`);
      if (reply) dc.send(reply);
      resolve({ received: m.data, log: logEl.textContent });
    });
    if (cfg.role === Role.MASTER) {
      signalingClient.on('open', () => log('master connected'));
      signalingClient.on('sdpOffer', async (offer, remoteClientId) => {
        try {
          log(`offer from ${remoteClientId}`);
          const pc = newPeer(remoteClientId);
          peers[remoteClientId] = pc;
          pc.addEventListener('datachannel', ({ channel }) => onMessage(channel, `hello viewer ${remoteClientId}, from the master`));
          await pc.setRemoteDescription(offer);
          await pc.setLocalDescription(await pc.createAnswer());
          signalingClient.sendSdpAnswer(pc.localDescription, remoteClientId);
        } catch (e) { fail('answering')(e); }
      });
      signalingClient.on('iceCandidate', (candidate, remoteClientId) => {
        const pc = peers[remoteClientId];
        if (pc) pc.addIceCandidate(candidate).catch(fail('adding a candidate'));
      });
    } else {
      const pc = newPeer(undefined);
      const dc = pc.createDataChannel('kvsDataChannel');
      dc.addEventListener('open', () => { log('data channel open'); dc.send(`hello master, from ${cfg.clientId}`); });
      onMessage(dc, null);
      signalingClient.on('open', async () => {
        try {
          log('viewer connected');
          await pc.setLocalDescription(await pc.createOffer());
          signalingClient.sendSdpOffer(pc.localDescription);
        } catch (e) { fail('offering')(e); }
      });
      signalingClient.on('sdpAnswer', (answer) => pc.setRemoteDescription(answer).catch(fail('taking the answer')));
      signalingClient.on('iceCandidate', (candidate) => pc.addIceCandidate(candidate).catch(fail('adding a candidate')));
    }
    signalingClient.open();
  });
};

// masterReady lets the test wait until the master is connected before it
// starts the viewer, as the sample page's user would.
window.masterConnected = () => /master connected/.test(logEl.textContent);

// runIngest is the sample page's ingestion mode (ingest.js).
window.runIngest = (cfg) => runIngest(cfg, log);
