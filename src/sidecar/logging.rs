//! Logging: `RUST_LOG` wins over `logging.level`; `json` writes OpenTelemetry-shaped lines as
//! auth-o-tron does (`timestamp`, `severityText`, `severityNumber`, `body`, `resource`,
//! `attributes`), `console` writes human-readable lines.
//!
//! Field values come from outside (user names, roles, claims), so neither format lets one forge
//! a line or a field: JSON escapes by construction, and the console format ([`ConsoleFields`])
//! quotes and escapes any value that contains blanks, `=`, quotes or control characters.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use super::config::{LogFormat, LoggingConfig};

/// Installs the global subscriber. Fails (instead of panicking) when one is already set or
/// `RUST_LOG` cannot be parsed.
pub fn init(cfg: &LoggingConfig) -> Result<(), tower::BoxError> {
    let filter = level_filter(cfg)?;
    // The filter sits directly on the registry, so the subscriber's level hint is the filter's
    // own (also for `log` records, which `try_init` caps by it).
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match cfg.format {
        LogFormat::Json => registry
            .with(
                layer.event_format(OtelJson {
                    service_name: cfg
                        .service_name
                        .clone()
                        .unwrap_or_else(|| "authotron".into()),
                    service_version: cfg
                        .service_version
                        .clone()
                        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").into()),
                }),
            )
            .try_init()?,
        LogFormat::Console => registry.with(layer.fmt_fields(ConsoleFields)).try_init()?,
    }
    Ok(())
}

/// The level filter [`init`] installs, for `--check` to refuse a bad `RUST_LOG` too.
pub(crate) fn level_filter(cfg: &LoggingConfig) -> Result<Targets, tower::BoxError> {
    match std::env::var("RUST_LOG") {
        Ok(v) => filter(Some(&v), &cfg.level),
        Err(std::env::VarError::NotPresent) => filter(None, &cfg.level),
        Err(std::env::VarError::NotUnicode(_)) => Err("RUST_LOG is not UTF-8".into()),
    }
}

/// The level filter: `RUST_LOG` when it is set and not blank, else `logging.level`.
///
/// Directives are `target=level` pairs and a default level (`warn,auth_o_tron=debug`), the
/// part of `tracing`'s `EnvFilter` syntax that logs are filtered by in practice. Span and field
/// filters (`[span{field=value}]`) are refused, so `tracing-subscriber`'s `env-filter` (and its
/// regex engine, ~12 s of a cold build) is not compiled in. A `RUST_LOG` that does not parse is
/// an error at start, not a silent fallback; so are an empty entry (`info,`, which `Targets`
/// would read as `error`), a blank inside an entry, a target without a level (`hyper`, or a
/// misspelt level such as `warning`, which `Targets` would read as "this target at `trace`,
/// nothing else"), and numeric levels (`0` is `off`): levels are spelt out.
fn filter(rust_log: Option<&str>, level: &str) -> Result<Targets, tower::BoxError> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let Some(directives) = rust_log.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(level.to_ascii_lowercase().parse()?);
    };
    let refuse = |why: &dyn fmt::Display| -> tower::BoxError {
        format!("RUST_LOG `{directives}`: {why} (expected e.g. `warn,auth_o_tron=debug`)").into()
    };
    for entry in directives.split(',') {
        if entry.is_empty() {
            return Err(refuse(&"an empty entry"));
        }
        if entry.contains(|c: char| c.is_whitespace() || c == '[' || c == '{') {
            return Err(refuse(&format_args!(
                "`{entry}`: blanks and span or field filters are not supported"
            )));
        }
        let (target, level) = entry.split_once('=').unwrap_or(("", entry));
        if entry.contains('=') && target.is_empty() {
            return Err(refuse(&format_args!("`{entry}` needs a target")));
        }
        if !LEVELS.iter().any(|l| level.eq_ignore_ascii_case(l)) {
            return Err(refuse(&format_args!(
                "`{entry}`: `{level}` is not one of off, error, warn, info, debug, trace"
            )));
        }
    }
    directives.parse().map_err(|e| refuse(&e))
}

/// The console format's fields: `name=value`, separated by spaces, the message first as it is.
/// A value that is empty or holds a blank, `=`, `"`, `\` or a control character is written as a
/// quoted string with Rust escapes (`user="alice\nlevel=ERROR"`), so it stays one field on one
/// line; a message holding `=`, `"`, `\` or a control character is quoted the same way.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleFields;

impl<'w> FormatFields<'w> for ConsoleFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = ConsoleVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct ConsoleVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl ConsoleVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        let special = |c: char| c.is_control() || matches!(c, '=' | '"' | '\\');
        self.result = if field.name() == "message" {
            // Free text, written as it is unless it could pass for fields.
            if value.chars().any(special) {
                write!(self.writer, "{sep}{value:?}")
            } else {
                write!(self.writer, "{sep}{value}")
            }
        } else if value.is_empty() || value.chars().any(|c| c.is_whitespace() || special(c)) {
            write!(self.writer, "{sep}{}={value:?}", field.name())
        } else {
            write!(self.writer, "{sep}{}={value}", field.name())
        };
    }
}

impl Visit for ConsoleVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }
}

/// One JSON object per event, shaped like auth-o-tron's OpenTelemetry logs.
#[derive(Debug)]
pub struct OtelJson {
    service_name: String,
    service_version: String,
}

struct Fields {
    body: String,
    attributes: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.body = format!("{value:?}");
        } else {
            self.attributes
                .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.body = value.to_owned();
        } else {
            self.attributes
                .insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes
            .insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes
            .insert(field.name().to_owned(), Value::from(value));
    }
}

fn severity(level: &Level) -> (&'static str, u8) {
    match *level {
        Level::TRACE => ("TRACE", 1),
        Level::DEBUG => ("DEBUG", 5),
        Level::INFO => ("INFO", 9),
        Level::WARN => ("WARN", 13),
        Level::ERROR => ("ERROR", 17),
    }
}

/// RFC 3339 UTC with milliseconds, from the system clock.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::time::rfc3339(now.as_secs() as i64, Some(now.subsec_millis()))
}

impl<S, N> FormatEvent<S, N> for OtelJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields {
            body: String::new(),
            attributes: Map::new(),
        };
        event.record(&mut fields);
        let (text, number) = severity(meta.level());
        let mut attributes = fields.attributes;
        let event_name = attributes
            .get("event_name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| fields.body.clone());
        attributes.insert("event.name".into(), Value::String(event_name.clone()));
        attributes.insert(
            "event.domain".into(),
            Value::String(event_name.split('.').next().unwrap_or("app").to_owned()),
        );
        attributes.insert(
            "code.target".into(),
            Value::String(meta.target().to_owned()),
        );
        if let Some(f) = meta.file() {
            attributes.insert("code.filepath".into(), Value::String(f.to_owned()));
        }
        if let Some(l) = meta.line() {
            attributes.insert("code.lineno".into(), Value::from(l));
        }
        let line = serde_json::json!({
            "timestamp": timestamp(),
            "severityText": text,
            "severityNumber": number,
            "body": if fields.body.is_empty() { event_name } else { fields.body },
            "resource": {"service.name": self.service_name, "service.version": self.service_version},
            "attributes": attributes,
        });
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects everything written, for assertions.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    #[test]
    fn rust_log_wins_over_the_configured_level_and_a_bad_one_is_an_error() {
        use tracing::level_filters::LevelFilter;
        let level = |t: &Targets, target: &str| {
            [
                Level::TRACE,
                Level::DEBUG,
                Level::INFO,
                Level::WARN,
                Level::ERROR,
            ]
            .into_iter()
            .find(|l| t.would_enable(target, l))
            .map(LevelFilter::from_level)
            .unwrap_or(LevelFilter::OFF)
        };
        let f = filter(None, "WARN").unwrap();
        assert_eq!(level(&f, "auth_o_tron::sidecar"), LevelFilter::WARN);
        let f = filter(Some("  "), "info").unwrap();
        assert_eq!(level(&f, "hyper"), LevelFilter::INFO);
        let f = filter(Some("error,auth_o_tron::audit=info"), "debug").unwrap();
        assert_eq!(level(&f, "auth_o_tron::audit"), LevelFilter::INFO);
        assert_eq!(level(&f, "auth_o_tron::sidecar"), LevelFilter::ERROR);
        let e = filter(Some("auth_o_tron=loud"), "info")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("RUST_LOG `auth_o_tron=loud`: "), "{e}");
        assert!(e.contains("warn,auth_o_tron=debug"), "{e}");
        for bad in [
            "info,",
            "warn,,auth_o_tron=debug",
            "warn, auth_o_tron=debug",
            "auth_o_tron=",
            "=debug",
            "[request]=debug",
            "auth_o_tron[{user}]=debug",
            "warning",
            "auth_o_tron",
            "hyper,warn",
            "auth_o_tron=1",
            "0",
        ] {
            let e = filter(Some(bad), "info").unwrap_err().to_string();
            assert!(e.starts_with(&format!("RUST_LOG `{bad}`: ")), "{bad}: {e}");
        }
        let f = filter(Some("off"), "info").unwrap();
        assert_eq!(level(&f, "auth_o_tron::audit"), LevelFilter::OFF);
    }

    const FORGED: &str =
        "alice\n2026-01-01T00:00:00Z  INFO auth.decision result=success user=admin";

    fn emit() {
        let name = FORGED.to_owned();
        tracing::info!(
            event_name = "auth.decision", result = "forbidden", user = %name, role = FORGED,
            claim = ?name, "decision for {}", name
        );
    }

    #[test]
    fn console_lines_cannot_be_forged_by_field_values() {
        let sink = Sink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .with_ansi(false)
            .fmt_fields(ConsoleFields)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        // Outside quoted values there is exactly one `user=` and one `result=`.
        let mut outside = String::new();
        let mut quoted = false;
        let mut escaped = false;
        for c in out.chars() {
            match (quoted, escaped, c) {
                (true, false, '\\') => escaped = true,
                (true, true, _) => escaped = false,
                (_, false, '"') => quoted = !quoted,
                (false, _, c) => outside.push(c),
                _ => {}
            }
        }
        assert_eq!(outside.matches("user=").count(), 1, "{out}");
        assert_eq!(outside.matches("result=").count(), 1, "{out}");
        assert!(out.contains(r#"user="alice\n2026"#), "{out}");
    }

    #[test]
    fn json_lines_keep_values_whole() {
        let sink = Sink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .event_format(OtelJson {
                service_name: "t".into(),
                service_version: "1".into(),
            })
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["attributes"]["user"], FORGED);
        assert_eq!(v["attributes"]["result"], "forbidden");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
        assert!(t.starts_with("20"));
    }
}
