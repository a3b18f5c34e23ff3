//! The baseline of `benches/proc/ratio.py`: a bare axum endpoint that answers `/authenticate`
//! (any method) with 200, a fixed set of headers and the sidecar's body, without
//! authenticating anything. It runs as its own process on the same default tokio runtime as
//! the `sidecar` example, so the ratio of the two measures what a decision costs.
//!
//! `cargo run --release --example bare -- --port 8081 --header 'authorization: Bearer x' ...`

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::routing::any;

const USAGE: &str = "usage: bare --port PORT [--header 'NAME: VALUE']...";

fn parse(args: impl Iterator<Item = String>) -> Result<(u16, HeaderMap), String> {
    let mut args = args.skip(1);
    let (mut port, mut headers) = (None, HeaderMap::new());
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => {
                let v = value()?;
                port = Some(v.parse().map_err(|_| format!("bad port {v:?}"))?);
            }
            "--header" => {
                let v = value()?;
                let (name, val) = v
                    .split_once(':')
                    .ok_or(format!("header {v:?} is not NAME: VALUE"))?;
                let name = HeaderName::try_from(name.trim()).map_err(|e| e.to_string())?;
                let val = HeaderValue::try_from(val.trim()).map_err(|e| e.to_string())?;
                headers.append(name, val);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((port.ok_or("--port is required")?, headers))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (port, headers) = match parse(std::env::args()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let app = axum::Router::new().route(
        "/authenticate",
        any(move || {
            let headers = headers.clone();
            async move { (headers, "Authenticated successfully") }
        }),
    );
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on port {port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The sidecar sets TCP_NODELAY on its connections; so does the baseline.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    match axum::serve(listener, app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
