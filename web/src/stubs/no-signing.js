// Stands in for isomorphic-webcrypto and ws in the browser bundle. The page
// never signs a request (its SignalingClient gets a custom signer that
// returns the vended URL) and always has the browser's own WebSocket, so
// neither module is needed; anything that reaches this stub is a bug.
const refuse = () => {
  throw new Error('kvssign demo: this page holds no AWS credentials and does not sign; the URL comes from the vending service');
};
export default { subtle: { importKey: refuse, sign: refuse, digest: refuse }, getRandomValues: refuse, ensureSecure: refuse };
