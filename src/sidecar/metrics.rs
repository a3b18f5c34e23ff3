//! Prometheus metrics with auth-o-tron's families under the `authotron_` prefix, plus cache hit
//! and miss counters. Request-path metrics live in a registry; provider, augmenter and cache
//! counters are read from the authenticator's [`Stats`](crate::Stats) at scrape time.

use std::fmt::Write as _;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::Authenticator;

/// The sidecar's metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(std::sync::Arc<Families>);

/// The metric families.
#[derive(Debug)]
pub struct Families {
    registry: Registry,
    /// `authotron_auth_requests_total{result, realm}`.
    pub auth_requests: IntCounterVec,
    /// `authotron_http_requests_total{route, method, status_code}`.
    pub http_requests: IntCounterVec,
    /// `authotron_http_request_duration_seconds{route, method}`.
    pub http_duration: HistogramVec,
    /// `authotron_http_requests_in_flight{method}`.
    pub in_flight: IntGaugeVec,
    /// `auth_requests{result="success"}` of each provider's realm, resolved once: a decision
    /// counts without a hashed label lookup.
    successes: Vec<(String, IntCounter)>,
    auth: Authenticator,
}

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl std::ops::Deref for Metrics {
    type Target = Families;
    fn deref(&self) -> &Families {
        &self.0
    }
}

impl Metrics {
    /// Registers the families; realms of `auth`'s providers are pre-initialised at zero.
    pub fn new(auth: &Authenticator) -> Self {
        let registry = Registry::new();
        let auth_requests = IntCounterVec::new(
            Opts::new(
                "authotron_auth_requests_total",
                "Authentication decisions by result and realm",
            ),
            &["result", "realm"],
        )
        .expect("valid metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "authotron_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status_code"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "authotron_http_request_duration_seconds",
                "HTTP request duration",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("valid metric");
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "authotron_http_requests_in_flight",
                "HTTP requests being served",
            ),
            &["method"],
        )
        .expect("valid metric");
        let build = IntGaugeVec::new(
            Opts::new("authotron_build_info", "Build information"),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        // process_* (CPU, memory, file descriptors) as auth-o-tron exports them.
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        for m in [
            Box::new(auth_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(in_flight.clone()),
            Box::new(build),
        ] {
            registry.register(m).expect("unique metric names");
        }
        let successes = auth
            .providers()
            .map(|p| {
                let realm = &p.info().realm;
                let c = auth_requests.with_label_values(&["success", realm]);
                (realm.to_owned(), c)
            })
            .collect();
        for result in [
            "no_auth_header",
            "invalid_header",
            "all_failed",
            "unavailable",
            "forbidden",
        ] {
            auth_requests.with_label_values(&[result, "unknown"]);
        }
        Metrics(std::sync::Arc::new(Families {
            registry,
            auth_requests,
            http_requests,
            http_duration,
            in_flight,
            successes,
            auth: auth.clone(),
        }))
    }

    /// Counts a successful decision for `realm`.
    pub fn count_success(&self, realm: &str) {
        match self.successes.iter().find(|(r, _)| r == realm) {
            Some((_, c)) => c.inc(),
            None => self
                .auth_requests
                .with_label_values(&["success", realm])
                .inc(),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        let stats = self.auth.stats();
        let _ = writeln!(
            out,
            "# HELP authotron_cache_hits_total Authentications answered from the cache"
        );
        let _ = writeln!(out, "# TYPE authotron_cache_hits_total counter");
        let _ = writeln!(out, "authotron_cache_hits_total {}", stats.cache_hits());
        let _ = writeln!(
            out,
            "# HELP authotron_cache_misses_total Authentications that asked providers"
        );
        let _ = writeln!(out, "# TYPE authotron_cache_misses_total counter");
        let _ = writeln!(out, "authotron_cache_misses_total {}", stats.cache_misses());
        let _ = writeln!(
            out,
            "# HELP authotron_auth_provider_attempts_total Provider calls by result"
        );
        let _ = writeln!(out, "# TYPE authotron_auth_provider_attempts_total counter");
        for (p, c) in self.auth.providers().zip(stats.providers()) {
            let scheme = p.info().scheme.name();
            for (result, n) in [
                ("success", c.success()),
                ("error", c.invalid() + c.unavailable()),
                ("timeout", c.timeout()),
                // Refused at once: the provider's concurrent-call limit was reached.
                ("busy", c.busy()),
            ] {
                let _ = writeln!(
                    out,
                    "authotron_auth_provider_attempts_total{{provider_name=\"{}\",provider_type=\"{}\",provider_scheme=\"{scheme}\",realm=\"{}\",result=\"{result}\"}} {n}",
                    escape(&p.info().name),
                    escape(p.info().kind),
                    escape(&p.info().realm)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP authotron_augmenter_attempts_total Augmenter runs by result"
        );
        let _ = writeln!(out, "# TYPE authotron_augmenter_attempts_total counter");
        for (a, c) in self.auth.augmenters().zip(stats.augmenters()) {
            for (result, n) in [("success", c.success()), ("error", c.error())] {
                let _ = writeln!(
                    out,
                    "authotron_augmenter_attempts_total{{augmenter_name=\"{}\",augmenter_type=\"{}\",realm=\"{}\",result=\"{result}\"}} {n}",
                    escape(&a.info().name),
                    escape(a.info().kind),
                    escape(&a.info().realm)
                );
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
