//! The nginx `auth_request` sidecar: the same pipeline as [`AuthLayer`](crate::AuthLayer),
//! served as a drop-in replacement for ecmwf/auth-o-tron (its v2 config files and wire
//! contract), without its defects.
//!
//! An application can serve [`router::app`] (a tower service) itself; the `sidecar` example is
//! [`main`] with the process arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::net::TcpListener;

mod admin;
pub mod config;
pub mod conn;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod peers;
pub mod router;
pub mod rules;
pub mod server;
pub mod shield;
pub mod track;
mod woken;

pub use config::Config;

/// The demo configuration used when nothing else is given.
pub const DEMO_CONFIG: &str = include_str!("../../examples/config.demo.yaml");

const USAGE: &str = "\
usage: sidecar [--config PATH] [--check] [--schema]

  --config PATH  configuration file (else $AOT_CONFIG_PATH, else ./config.yaml,
                 else the bundled demo configuration)
  --check        validate the configuration, print a summary, and exit
  --schema       print the JSON Schema of the configuration and exit

token commands (on the configured `tokens.store`):
";

enum Source {
    File(PathBuf),
    Demo,
}

/// Runs the sidecar with command-line `args` (without the program name).
pub async fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    // Only this line is generic: the rest is compiled once, here, and not again in every binary
    // that calls it (the example binary's build went from about a minute to seconds).
    main_with(args.into_iter().collect()).await
}

async fn main_with(args: Vec<String>) -> ExitCode {
    let mut path = None;
    let (mut check, mut schema) = (false, false);
    let mut admin = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "tokens" => {
                let rest: Vec<String> = args.by_ref().collect();
                match admin::Command::parse(&rest) {
                    Ok(c) => admin = Some(c),
                    Err(e) => return usage_error(&e.0),
                }
            }
            "--config" | "-c" => match args.next() {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return usage_error("--config needs a path"),
            },
            "--check" => check = true,
            "--schema" => schema = true,
            "--help" | "-h" => {
                print!("{USAGE}{}", admin::USAGE);
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument {other:?}")),
        }
    }
    if schema {
        let schema = schemars::schema_for!(Config);
        println!(
            "{}",
            serde_json::to_string_pretty(&schema).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let source = match path.or_else(|| std::env::var_os("AOT_CONFIG_PATH").map(PathBuf::from)) {
        Some(p) => Source::File(p),
        None if std::path::Path::new("config.yaml").exists() => Source::File("config.yaml".into()),
        None => Source::Demo,
    };
    let loaded = match &source {
        Source::File(p) => Config::load(p),
        Source::Demo => Config::from_yaml(DEMO_CONFIG, std::env::vars()),
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = loaded.config;
    let built = match config.build() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(command) = admin {
        let Some(tokens) = &built.tokens else {
            eprintln!("error: config key `tokens.enabled`: token commands need tokens enabled");
            return ExitCode::FAILURE;
        };
        // Audit lines of revocations go where the service's logs go (stderr).
        if let Err(e) = logging::init(&config.logging) {
            eprintln!("error: cannot install the logger: {e}");
            return ExitCode::FAILURE;
        }
        return match admin::run(&config, tokens, command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if check {
        if let Err(e) = logging::level_filter(&config.logging) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        for w in loaded.warnings.iter().chain(built.rules.warnings()) {
            println!("warning: {w}");
        }
        print_summary(&config);
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = logging::init(&config.logging) {
        eprintln!("error: cannot install the logger: {e}");
        return ExitCode::FAILURE;
    }
    for w in loaded.warnings.iter().chain(&config::warnings(&config)) {
        tracing::warn!(event_name = "startup.config.warning", "{w}");
    }
    match run(config, built, matches!(source, Source::Demo)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(event_name = "startup.failed", "{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\n\n{USAGE}{}", admin::USAGE);
    ExitCode::from(2)
}

fn print_summary(config: &Config) {
    for w in config::warnings(config) {
        println!("warning: {w}");
    }
    println!("listen: {}:{}", config.server.host, config.server.port);
    if config.metrics.enabled {
        println!(
            "metrics: {}:{}",
            config
                .metrics
                .host
                .as_deref()
                .unwrap_or(&config.server.host),
            config.metrics.port
        );
    }
    for p in config.providers.iter().map(|p| &p.keys) {
        println!("provider: {} (type {}, realm {})", p.name, p.kind, p.realm);
    }
    for a in config.augmenters.iter().map(|a| &a.keys) {
        println!("augmenter: {} (type {}, realm {})", a.name, a.kind, a.realm);
    }
    println!(
        "minted JWT: {:?}, iss {}, lifetime {} s",
        config.jwt.algorithm, config.jwt.iss, config.jwt.exp
    );
    println!(
        "rules: {} (ambiguous original URIs: {:?})",
        config.rules.len(),
        config.server.ambiguous_paths
    );
    match &config.server.trusted_proxies {
        Some(list) => println!("trusted proxies: {}", list.join(", ")),
        None => println!("trusted proxies: any peer (bind to loopback)"),
    }
    let services = config.services.as_deref().unwrap_or_default();
    if !services.is_empty() {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        println!("services (scopes catalogue): {}", names.join(", "));
    }
    if let Some(t) = config.tokens.as_ref().filter(|t| t.enabled) {
        println!(
            "tokens: /tokens on the app port, {} store, lifetime {} days (at most {}), cache {} s",
            t.store_url().split(':').next().unwrap_or_default(),
            t.default_lifetime_days,
            t.max_lifetime_days,
            t.cache_ttl_seconds
        );
    }
    if let Some(p) = config.portal.as_ref().filter(|p| p.enabled) {
        println!(
            "portal: {} on the app port{}{}",
            p.path,
            if p.oidc.is_some() {
                ", OpenID Connect login"
            } else {
                ""
            },
            if p.admin_roles.is_empty() {
                String::new()
            } else {
                format!(", administrators: {}", p.admin_roles.join(", "))
            }
        );
    }
}

/// Why the sidecar could not start serving.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A listener's host is not an IP address.
    Host(String),
    /// A listener could not bind.
    Listen(SocketAddr, std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Host(host) => write!(f, "server host {host:?} is not an IP address"),
            StartError::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

async fn listen(host: &str, port: u16) -> Result<(SocketAddr, TcpListener), StartError> {
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| StartError::Host(host.to_owned()))?;
    let addr = SocketAddr::new(ip, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen(addr, e))?;
    Ok((addr, listener))
}

/// Binds the listeners and serves until SIGTERM or SIGINT.
pub async fn run(config: Config, built: config::Built, demo: bool) -> Result<(), StartError> {
    // Keys and discovery documents load in the background; `/ready` says when they are there.
    for p in built.authenticator.providers() {
        let p = p.clone();
        tokio::spawn(async move { p.warm_up().await });
    }
    if let Some(tokens) = &built.tokens {
        crate::token::evict_on_revocation(&*tokens.store, &built.authenticator);
        tokens
            .last_used
            .spawn_flusher(crate::token::DEFAULT_LAST_USED_INTERVAL);
        let store = tokens.store.clone();
        // Opened now so that migrations run at start; a store that is down is retried on use.
        tokio::spawn(async move { store.open().await.map(|_| ()) });
    }
    let metrics = metrics::Metrics::new(&built.authenticator);
    let app = router::app(&config, &built, metrics.clone());
    let (app_addr, listener) = listen(&config.server.host, config.server.port).await?;
    let ms = std::time::Duration::from_millis;
    let limits = server::Limits {
        header_read_timeout: ms(config.server.header_read_timeout_ms),
        idle_timeout: ms(config.server.idle_timeout_ms),
        request_timeout: ms(config.server.request_timeout_ms),
        max_connections: server::fit_connections(config.server.max_connections),
        max_header_bytes: config.server.max_header_bytes,
        max_concurrent: config.server.max_concurrent_requests,
        ..server::Limits::default()
    };
    for w in built.rules.warnings() {
        tracing::warn!(event_name = "startup.config.warning", "{w}");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    if config.metrics.enabled {
        let host = config
            .metrics
            .host
            .as_deref()
            .unwrap_or(&config.server.host);
        let (maddr, ml) = listen(host, config.metrics.port).await?;
        let mut rx = stop_rx.clone();
        tasks.spawn(server::serve(
            ml,
            router::metrics_app(metrics),
            limits,
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        tracing::info!(event_name = "startup.metrics.listening", address = %maddr, "metrics listening");
    }
    let mut rx = stop_rx.clone();
    tasks.spawn(server::serve(listener, app, limits, async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    tracing::info!(event_name = "startup.server.listening", address = %app_addr, "auth-o-tron sidecar listening");
    if demo {
        eprintln!(
            "\nDEMO MODE: bundled demo configuration (users alice/wonderland and bob/builder).\n\
             Try:\n  curl -i -u alice:wonderland -H 'X-Original-URI: /' http://{app_addr}/authenticate\n  \
             curl -i -u bob:builder -H 'X-Original-URI: /admin' http://{app_addr}/authenticate\n\
             Token portal: open http://{app_addr}/portal in a browser and log in as alice/wonderland\n\
             (bob/builder also sees every user's tokens).\n"
        );
    }
    server::shutdown_signal().await;
    let _ = stop_tx.send(true);
    // One line for every listener (the service's and the metrics').
    let mut drained = true;
    while let Some(ended) = tasks.join_next().await {
        drained &= matches!(ended, Ok(server::Drain::Closed));
    }
    if drained {
        tracing::info!(event_name = "shutdown.drained", "all connections closed");
    } else {
        tracing::warn!(
            event_name = "shutdown.timeout",
            "connections still open after the drain timeout"
        );
    }
    if let Some(tokens) = &built.tokens {
        // Uses noted since the last batch would otherwise be lost with the process.
        let _ = tokens.last_used.flush(crate::token::last_used_now()).await;
    }
    Ok(())
}
