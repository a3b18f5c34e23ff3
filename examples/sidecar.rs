//! The auth-o-tron sidecar: `cargo run --release --example sidecar -- [--config PATH]`.
//!
//! With no configuration it starts on the bundled demo config and prints a `curl` line to try.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    auth_o_tron::sidecar::main(std::env::args().skip(1)).await
}
