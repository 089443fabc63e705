// SendAlexaOfferToMaster, served at the channel's HTTPS endpoint: the
// offer goes to the connected master as an SDP_OFFER from SenderClientId,
// and the master's SDP_ANSWER to that ClientId is the call's answer.

package emulator

import (
	"net/http"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

const alexaPath = "/v1/send-alexa-offer-to-master"

// isAlexaPath reports whether p is SendAlexaOfferToMaster's path under
// a channel's HTTPS endpoint, /ice/<token>/v1/send-alexa-offer-to-master.
func isAlexaPath(p string) bool {
	token, tail, _ := strings.Cut(strings.TrimPrefix(p, "/ice/"), "/")
	return strings.HasPrefix(p, "/ice/") && token != "" && "/"+tail == alexaPath
}

type alexaInput struct {
	ChannelARN     *string
	SenderClientId *string
	MessagePayload *string
}

// alexaOutput's Answer is null when no answer came, as KVS sends it.
type alexaOutput struct {
	Answer *string
}

func (e *Emulator) serveAlexa(w http.ResponseWriter, r *http.Request) {
	e.setCommonHeaders(w)
	op := OpSendAlexaOfferToMaster
	if r.Method != http.MethodPost {
		e.writeJSONError(w, errf(http.StatusNotFound, "UnknownOperationException", "no operation at %s %s; SendAlexaOfferToMaster is POST <HTTPS endpoint>%s", r.Method, clipValue(r.URL.Path), alexaPath))
		return
	}
	e.stats.call(op)
	// The master may take up to AlexaAnswerTimeout to answer: the write
	// deadline ServeHTTP set must not cut the wait short.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(e.cfg.AlexaAnswerTimeout + e.reqTimeout))
	out, err := e.alexaOffer(r)
	if err != nil {
		e.stats.fail(op)
		e.log.Debug("SendAlexaOfferToMaster error", "err", err)
		e.writeJSONError(w, err)
		return
	}
	e.writeJSON(w, out)
}

func checkAlexaInput(in alexaInput) error {
	if _, err := checkARN("channelARN", in.ChannelARN); err != nil {
		return err
	}
	switch {
	case in.SenderClientId == nil:
		return invalidArg("1 validation error detected: Value null at 'senderClientId' failed to satisfy constraint: Member must not be null")
	case kvs.ValidateClientID(*in.SenderClientId) != nil:
		return invalidArg("%s", validationMessage(*in.SenderClientId, "senderClientId", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ of length 1 to 256"))
	case in.MessagePayload == nil:
		return invalidArg("1 validation error detected: Value null at 'messagePayload' failed to satisfy constraint: Member must not be null")
	case len(*in.MessagePayload) < 1 || len(*in.MessagePayload) > kvs.MaxPayloadSize:
		return invalidArg("%s", validationMessage(*in.MessagePayload, "messagePayload", "Member must have length between 1 and 10000"))
	case strings.Trim(*in.MessagePayload, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "":
		return invalidArg("%s", validationMessage(*in.MessagePayload, "messagePayload", "Member must satisfy regular expression pattern: [a-zA-Z0-9+/=]+"))
	}
	return nil
}

func (e *Emulator) alexaOffer(r *http.Request) (*alexaOutput, error) {
	body, res, err := e.readSigned(r)
	if err != nil {
		return nil, err
	}
	if ae := e.faults.inject(OpSendAlexaOfferToMaster, false); ae != nil {
		e.stats.faults.Add(1)
		return nil, ae
	}
	var in alexaInput
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if err := checkAlexaInput(in); err != nil {
		return nil, err
	}
	who, ae := e.caller(res.AccessKeyID)
	if ae != nil {
		return nil, ae
	}
	if ae := e.quotas.allowAccount(OpSendAlexaOfferToMaster, e.now()); ae != nil {
		return nil, ae
	}
	if ae := e.authorize(who, OpSendAlexaOfferToMaster, *in.ChannelARN); ae != nil {
		return nil, ae
	}
	ch, err := e.channelByARN(*in.ChannelARN)
	if err != nil {
		return nil, err
	}
	if ae := e.quotas.allowChannel(OpSendAlexaOfferToMaster, ch.arn, e.now()); ae != nil {
		return nil, ae
	}
	sender := *in.SenderClientId
	answer := make(chan string, 1)
	ch.mu.Lock()
	if ch.master == nil || ch.deleted {
		// Nobody to answer: KVS answers 200 with a null Answer rather
		// than an error, so the emulator does not wait for the timeout.
		ch.mu.Unlock()
		return &alexaOutput{}, nil
	}
	if _, waiting := ch.alexa[sender]; waiting || ch.viewers[sender] != nil {
		// Taking over would hand this caller the answer meant for the
		// connected viewer, or for an earlier caller, with its ICE
		// credentials and DTLS fingerprint.
		ch.mu.Unlock()
		return nil, invalidArg("SenderClientId %q is in use by a connected viewer or an offer awaiting its answer; choose another.", sender)
	}
	if ch.alexa == nil {
		ch.alexa = map[string]chan string{}
	}
	ch.alexa[sender] = answer
	ch.mu.Unlock()
	defer func() {
		ch.mu.Lock()
		if ch.alexa[sender] == answer {
			delete(ch.alexa, sender)
		}
		ch.mu.Unlock()
	}()
	e.route(ch, "", kvs.ServerMessage{MessageType: kvs.ActionSDPOffer, MessagePayload: *in.MessagePayload, SenderClientID: sender}, e.now())
	t := time.NewTimer(e.cfg.AlexaAnswerTimeout)
	defer t.Stop()
	select {
	case a := <-answer:
		return &alexaOutput{Answer: &a}, nil
	case <-t.C:
		e.log.Info("SendAlexaOfferToMaster: no answer from the master", "channel", ch.name, "senderClientId", sender, "timeout", e.cfg.AlexaAnswerTimeout)
		return &alexaOutput{}, nil
	case <-r.Context().Done():
		// The caller is gone; the answer is for the log only.
		return nil, errf(http.StatusRequestTimeout, "RequestTimeout", "The client closed the request before the master answered.")
	case <-e.done:
		return nil, errf(http.StatusServiceUnavailable, "ServiceUnavailableException", "The emulator is shutting down.")
	}
}

// takeAlexaAnswerLocked hands an SDP_ANSWER the master sent to key to the
// SendAlexaOfferToMaster call waiting for it, if any. The caller holds
// ch.mu.
func (ch *channel) takeAlexaAnswerLocked(key string, m kvs.ServerMessage) bool {
	w, ok := ch.alexa[key]
	if !ok || m.MessageType != kvs.ActionSDPAnswer {
		return false
	}
	delete(ch.alexa, key)
	w <- m.MessagePayload
	return true
}
