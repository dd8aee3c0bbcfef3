//! Logging and tokio-console for the lab binaries.
//!
//! `console-subscriber` is compiled into every lab (so all labs share one
//! dependency set) but only switched on when asked: `TOKIO_CONSOLE=1` or
//! `--console`. It needs the `tokio_unstable` cfg, which the workspace's
//! `.cargo/config.toml` sets; a `RUSTFLAGS` variable in the environment
//! silently replaces that setting, so we check instead of panicking.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber: tokio-console's when `console` is
/// true and the build supports it, plain log lines otherwise (`RUST_LOG`
/// filters them; `info` unless it is set).
pub fn init_tracing(console: bool) {
    init_tracing_with(console, "info");
}

/// [`init_tracing`], with the log filter to use when `RUST_LOG` is not set
/// (e.g. `"info,tower_http=debug"` to see a line per response).
pub fn init_tracing_with(console: bool, default_filter: &str) {
    if console {
        if cfg!(tokio_unstable) {
            // Serves the console's gRPC API on 127.0.0.1:6669 (TOKIO_CONSOLE_BIND
            // moves it) and also prints logs filtered by RUST_LOG.
            console_subscriber::init();
            let bind =
                std::env::var("TOKIO_CONSOLE_BIND").unwrap_or_else(|_| "127.0.0.1:6669".into());
            eprintln!(
                "tokio-console: enabled; run `tokio-console http://{bind}` in another \
                 terminal (install it once with `cargo install --locked tokio-console`)"
            );
            return;
        }
        eprintln!("{}", missing_tokio_unstable_help());
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // `try_init`: a second call (e.g. two servers in one process) keeps the first.
    // Colours on a terminal only: a log redirected to a file stays plain text.
    let ansi = std::io::stdout().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .try_init();
}

/// What to tell a learner whose build lacks `--cfg tokio_unstable`.
pub(crate) fn missing_tokio_unstable_help() -> &'static str {
    "tokio-console: NOT enabled. This binary was built without `--cfg tokio_unstable`, \
     which tokio-console needs. The workspace's .cargo/config.toml sets it, so something \
     replaced it, usually a RUSTFLAGS variable in your environment. Fix: `unset RUSTFLAGS` \
     (or add `--cfg tokio_unstable` to it) and run again. Continuing without the console."
}
