package watch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lapsehq/lapse/probe"
)

// metrics are the gauges and counters a Watcher keeps.
type metrics struct {
	up       *prometheus.GaugeVec
	status   *prometheus.GaugeVec
	failed   *prometheus.GaugeVec
	expiry   *prometheus.GaugeVec
	last     *prometheus.GaugeVec
	duration *prometheus.GaugeVec
	runs     *prometheus.CounterVec
}

var statuses = []probe.Status{probe.Pass, probe.Fail, probe.Skip, probe.Error}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "lapse", Subsystem: "probe", Name: name, Help: help}, labels)
	}
	m := &metrics{
		up:       gauge("up", "1 when the last run reached the target and signed in, else 0.", "target"),
		status:   gauge("check_status", "1 for the status each check had in the last run, 0 for the other statuses.", "target", "check", "status"),
		failed:   gauge("failed_checks", "Checks that failed or could not complete in the last run.", "target"),
		expiry:   gauge("measured_expiry_seconds", "Bracket in which a timeout check saw the session end (bound min or max).", "target", "check", "bound"),
		last:     gauge("last_run_timestamp_seconds", "When the last run finished, in Unix seconds.", "target"),
		duration: gauge("run_duration_seconds", "How long the last run took.", "target"),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "lapse", Subsystem: "probe", Name: "runs_total",
			Help: "Runs by result: pass (nothing failed), fail (a check failed or errored), unreachable (the run could not start)."}, []string{"target", "result"}),
	}
	for _, c := range []prometheus.Collector{m.up, m.status, m.failed, m.expiry, m.last, m.duration, m.runs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) record(target string, started time.Time, rep *probe.Report, err error) {
	m.last.WithLabelValues(target).Set(float64(time.Now().Unix()))
	m.duration.WithLabelValues(target).Set(time.Since(started).Seconds())
	if err != nil {
		m.up.WithLabelValues(target).Set(0)
		m.runs.WithLabelValues(target, "unreachable").Inc()
		return
	}
	m.up.WithLabelValues(target).Set(1)
	result := "pass"
	if rep.Failed() {
		result = "fail"
	}
	m.runs.WithLabelValues(target, result).Inc()
	m.failed.WithLabelValues(target).Set(float64(rep.Count(probe.Fail) + rep.Count(probe.Error)))
	for _, c := range rep.Checks {
		for _, s := range statuses {
			v := 0.0
			if c.Status == s {
				v = 1
			}
			m.status.WithLabelValues(target, c.ID, string(s)).Set(v)
		}
		if w := c.Measured; w != nil {
			m.expiry.WithLabelValues(target, c.ID, "min").Set(w.Min)
			if w.Max > 0 {
				m.expiry.WithLabelValues(target, c.ID, "max").Set(w.Max)
			} else {
				m.expiry.DeleteLabelValues(target, c.ID, "max")
			}
		}
	}
}
