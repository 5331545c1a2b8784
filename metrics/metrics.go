// Package metrics exposes mockmdm's Prometheus metrics on a registry of its
// own (so nothing global leaks between servers in one test process): HTTP
// requests by route template and status with their durations, push and
// webhook outcomes, and — read from the store at scrape time — enrollments
// by type and state and the command queue depth.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mockmdm/mockmdm/internal/httpx"
	"github.com/mockmdm/mockmdm/store"
)

// Namespace prefixes every metric name.
const Namespace = "mockmdm"

// DefaultScrapeTimeout bounds the store reads of one scrape.
const DefaultScrapeTimeout = 5 * time.Second

// DefaultMaxQueueScan bounds how many enrollments one scrape reads the
// queue of; past it the queue depth is a lower bound, and
// mockmdm_queue_scan_truncated says so.
const DefaultMaxQueueScan = 10000

// EnrollmentLister is what the enrollment gauges read.
type EnrollmentLister interface {
	ListEnrollments(ctx context.Context) ([]*store.Enrollment, error)
}

// QueueLister is what the queue-depth gauge reads.
type QueueLister interface {
	QueueItems(ctx context.Context, id string) ([]*store.QueueItem, error)
}

// Metrics holds the collectors and their registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	pushes   *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	log      *slog.Logger
}

// Option configures Metrics.
type Option func(*config)

type config struct {
	log      *slog.Logger
	timeout  time.Duration
	maxScan  int
	enrolls  EnrollmentLister
	queue    QueueLister
	runtime  bool
	buckets  []float64
	registry *prometheus.Registry
}

// WithLogger sets the logger for scrape-time store errors (nil: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithStore reads enrollment and queue gauges from these at scrape time
// (either may be nil: that gauge is not exported).
func WithStore(e EnrollmentLister, q QueueLister) Option {
	return func(c *config) { c.enrolls, c.queue = e, q }
}

// WithScrapeLimits bounds a scrape's store reads: a timeout, and how many
// enrollments' queues are read.
func WithScrapeLimits(timeout time.Duration, maxQueueScan int) Option {
	return func(c *config) { c.timeout, c.maxScan = timeout, maxQueueScan }
}

// WithRuntimeMetrics adds the Go runtime and process collectors (off by
// default: they are process-wide, and tests run many servers in one process).
func WithRuntimeMetrics() Option { return func(c *config) { c.runtime = true } }

// WithBuckets sets the request-duration histogram buckets, in seconds.
func WithBuckets(b []float64) Option { return func(c *config) { c.buckets = b } }

// New registers mockmdm's metrics on a new registry.
func New(opts ...Option) *Metrics {
	c := config{timeout: DefaultScrapeTimeout, maxScan: DefaultMaxQueueScan, buckets: prometheus.DefBuckets}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 || c.maxScan < 0 {
		panic("metrics.New: scrape timeout must be positive and the queue scan limit not negative")
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: c.log}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests served, by route template (never the raw path), method and status code.",
	}, []string{"endpoint", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route template and method.",
		Buckets: c.buckets,
	}, []string{"endpoint", "method"})
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "push_results_total",
		Help: "APNs pushes by outcome: sent, rejected (APNs refused), error (transport), skipped (no usable target or certificate).",
	}, []string{"outcome"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "webhook_deliveries_total",
		Help: "Webhook deliveries (one per event and URL) by outcome: delivered, failed (retries exhausted or refused), dropped (queue full or closed).",
	}, []string{"outcome"})
	m.reg.MustRegister(m.requests, m.duration, m.pushes, m.webhooks)
	if c.enrolls != nil || c.queue != nil {
		m.reg.MustRegister(&storeCollector{c: c, log: c.log})
	}
	if c.runtime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry is the registry the metrics are on, to add collectors or gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format (text, or
// protobuf/OpenMetrics when the scraper asks). A failing store read does
// not fail the scrape: the other metrics are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       0,
	})
}

// ObservePush counts one push result by outcome (the push service calls it).
func (m *Metrics) ObservePush(outcome string) { m.pushes.WithLabelValues(outcome).Inc() }

// ObserveWebhook counts one webhook delivery by outcome (webhook.WithOnOutcome).
func (m *Metrics) ObserveWebhook(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// Instrument counts and times the requests next serves under endpoint, the
// route template ("/v1/enrollments/{id}"), so that labels stay bounded
// whatever paths clients send.
func (m *Metrics) Instrument(endpoint string, next http.Handler) http.Handler {
	dur := m.duration.MustCurryWith(prometheus.Labels{"endpoint": endpoint})
	// The series of each method and status, resolved once: looking them
	// up by label values hashes the labels on every request.
	type series struct {
		requests prometheus.Counter
		duration prometheus.Observer
	}
	type key struct {
		method string
		code   int
	}
	var resolved sync.Map // key → series
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// ww is a Hijacker only when w is (HTTP/1): code that asserts
		// http.Hijacker (the mock APNs stream) sees the truth.
		sw, ww := httpx.NewStatusWriter(w)
		defer func() {
			code := sw.Status()
			if code == 0 {
				code = http.StatusOK
			}
			k := key{normalizeMethod(r.Method), code}
			v, ok := resolved.Load(k)
			if !ok {
				v, _ = resolved.LoadOrStore(k, series{
					requests: m.requests.WithLabelValues(endpoint, k.method, strconv.Itoa(code)),
					duration: dur.WithLabelValues(k.method),
				})
			}
			s := v.(series)
			s.requests.Inc()
			s.duration.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}

// normalizeMethod keeps the method label bounded: a client may send any token.
func normalizeMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

var (
	enrollmentsDesc = prometheus.NewDesc(Namespace+"_enrollments",
		"Enrollments in the store by type (Device, User, UserEnrollmentDevice…) and state (enrolled, checked_out, pending: authenticated, no TokenUpdate yet).",
		[]string{"type", "state"}, nil)
	queueDesc = prometheus.NewDesc(Namespace+"_queue_depth",
		"Commands queued without a final answer (Pending or NotNow), over all enrollments read.",
		nil, nil)
	truncatedDesc = prometheus.NewDesc(Namespace+"_queue_scan_truncated",
		"1 if the last scrape read the queues of only some enrollments (the scan limit), so queue_depth is a lower bound.",
		nil, nil)
	scrapeErrDesc = prometheus.NewDesc(Namespace+"_store_scrape_errors",
		"1 if the last scrape could not read the store (see the server log).",
		nil, nil)
)

// storeCollector reads the store at scrape time, bounded by a timeout and a
// scan limit.
type storeCollector struct {
	c   config
	log *slog.Logger
}

func (s *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	if s.c.enrolls != nil {
		ch <- enrollmentsDesc
	}
	if s.c.queue != nil {
		ch <- queueDesc
		ch <- truncatedDesc
	}
	ch <- scrapeErrDesc
}

func (s *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), s.c.timeout)
	defer cancel()
	failed := 0.0
	var list []*store.Enrollment
	if s.c.enrolls != nil || s.c.queue != nil {
		lister := s.c.enrolls
		if lister == nil {
			if l, ok := s.c.queue.(EnrollmentLister); ok {
				lister = l
			}
		}
		if lister != nil {
			var err error
			if list, err = lister.ListEnrollments(ctx); err != nil {
				s.log.Warn("metrics: listing enrollments", "err", err)
				failed = 1
			}
		}
	}
	if s.c.enrolls != nil && failed == 0 {
		type key struct{ typ, state string }
		counts := map[key]int{}
		for _, e := range list {
			state := "pending"
			switch {
			case e.CheckedOut:
				state = "checked_out"
			case e.Enrolled:
				state = "enrolled"
			}
			counts[key{e.Type, state}]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(enrollmentsDesc, prometheus.GaugeValue, float64(n), k.typ, k.state)
		}
	}
	if s.c.queue != nil && failed == 0 {
		depth, truncated := 0, 0.0
		for i, e := range list {
			if i >= s.c.maxScan {
				truncated = 1
				break
			}
			if e.CheckedOut {
				continue
			}
			items, err := s.c.queue.QueueItems(ctx, e.ID)
			if err != nil {
				s.log.Warn("metrics: reading a queue", "enrollment_id", e.ID, "err", err)
				failed = 1
				break
			}
			depth += len(items)
		}
		if failed == 0 {
			ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(depth))
			ch <- prometheus.MustNewConstMetric(truncatedDesc, prometheus.GaugeValue, truncated)
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
}
