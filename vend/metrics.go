// Prometheus metrics: requests by route and status, latency, vended URLs,
// cache results, refused callers, and upstream (AWS) calls.

package vend

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kvssign/kvssign/kvs"
)

type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	vended      *prometheus.CounterVec
	cache       *prometheus.CounterVec
	authFailure *prometheus.CounterVec
	limited     *prometheus.CounterVec
	busy        prometheus.Counter

	// Hot-path children, looked up once.
	ok200                      prometheus.Counter
	connDur                    prometheus.Observer
	hit, miss                  prometheus.Counter
	vendedMaster, vendedViewer prometheus.Counter
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kvssign_vend_request_duration_seconds", Help: "Time to answer an HTTP request, by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvssign_vend_requests_in_flight", Help: "HTTP requests being served.",
		}),
		vended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_urls_vended_total", Help: "Signed URLs handed out, by role.",
		}, []string{"role"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_cache_requests_total", Help: "Channel lookups by cache result: hit (no AWS call), miss (AWS called), stale (AWS failed, expired entry served).",
		}, []string{"result"}),
		authFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_auth_failures_total", Help: "Requests refused with 401, by reason.",
		}, []string{"reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_rate_limited_total", Help: "Requests refused with 429, by limit (ip or principal).",
		}, []string{"limit"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvssign_vend_busy_total", Help: "Requests refused with 503 because limits.maxInFlight requests were being worked on until their wait ran out.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.vended, m.cache, m.authFailure, m.limited, m.busy} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.ok200 = m.requests.WithLabelValues(routeConnections, "200")
	m.connDur = m.duration.WithLabelValues(routeConnections)
	m.hit = m.cache.WithLabelValues("hit")
	m.miss = m.cache.WithLabelValues("miss")
	m.vendedMaster = m.vended.WithLabelValues(string(kvs.Master))
	m.vendedViewer = m.vended.WithLabelValues(string(kvs.Viewer))
	return m, nil
}

// newRegistry returns a registry with the Go runtime and process
// collectors.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// vendedFor returns the vended URLs' counter for role.
func (m *metrics) vendedFor(role kvs.Role) prometheus.Counter {
	if role == kvs.Master {
		return m.vendedMaster
	}
	return m.vendedViewer
}

func (m *metrics) observe(route string, code int, seconds float64) {
	if route == routeConnections {
		m.connDur.Observe(seconds)
		if code == http.StatusOK {
			m.ok200.Inc()
			return
		}
	} else {
		m.duration.WithLabelValues(route).Observe(seconds)
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// CountUpstream wraps next to count the AWS calls made through it in reg,
// by operation, as kvssign_vend_upstream_calls_total and
// kvssign_vend_upstream_errors_total (a transport error or a status of 400
// or more). Set it as the aws.Config's HTTPClient after loading the config
// (the SDK needs its own client while loading, to apply a CA bundle), before
// making the clients of the [Backend] and [Scoper].
func CountUpstream(reg prometheus.Registerer, next aws.HTTPClient) (aws.HTTPClient, error) {
	if next == nil {
		next = http.DefaultClient
	}
	c := &countingClient{
		next: next,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_upstream_calls_total", Help: "Calls to AWS (or the emulator), by operation.",
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvssign_vend_upstream_errors_total", Help: "Failed calls to AWS: transport errors and HTTP statuses of 400 or more, by operation.",
		}, []string{"operation"}),
	}
	if err := reg.Register(c.calls); err != nil {
		return nil, err
	}
	if err := reg.Register(c.errors); err != nil {
		return nil, err
	}
	return c, nil
}

type countingClient struct {
	next          aws.HTTPClient
	calls, errors *prometheus.CounterVec
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	op := upstreamOperation(r)
	c.calls.WithLabelValues(op).Inc()
	resp, err := c.next.Do(r)
	if err != nil || resp.StatusCode >= 400 {
		c.errors.WithLabelValues(op).Inc()
	}
	return resp, err
}

// upstreamOperation names the AWS operation a request is for, from its
// path: the kinesisvideo control plane names it (/describeSignalingChannel),
// GetIceServerConfig ends in /v1/get-ice-server-config, and STS posts to /.
func upstreamOperation(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/v1/get-ice-server-config"):
		return "GetIceServerConfig"
	case p == "/" || p == "":
		if strings.HasPrefix(r.URL.Host, "sts.") || r.Method == http.MethodPost {
			return "STS"
		}
	default:
		if op, ok := controlOperations[p]; ok {
			return op
		}
	}
	return "other"
}

var controlOperations = map[string]string{
	"/createSignalingChannel":      "CreateSignalingChannel",
	"/describeSignalingChannel":    "DescribeSignalingChannel",
	"/getSignalingChannelEndpoint": "GetSignalingChannelEndpoint",
	"/listSignalingChannels":       "ListSignalingChannels",
	"/deleteSignalingChannel":      "DeleteSignalingChannel",
}
