//! Logging and tokio-console for the lab binaries.
//!
//! `console-subscriber` is compiled into every lab (so all labs share one
//! dependency set) but only switched on when asked: `TOKIO_CONSOLE=1` or
//! `--console`. It needs the `tokio_unstable` cfg, which the workspace's
//! `.cargo/config.toml` sets; a `RUSTFLAGS` variable in the environment
//! silently replaces that setting, so we check instead of panicking.
//!
//! The console layer sees tasks only, not tokio's resources (timers, locks,
//! channels): see [`console_sees`] for why.

use std::io::IsTerminal;

use tracing::Metadata;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::prelude::*;

/// Installs the global tracing subscriber: tokio-console's when `console` is
/// true and the build supports it, plain log lines otherwise (`RUST_LOG`
/// filters them; `info` unless it is set).
pub fn init_tracing(console: bool) {
    init_tracing_with(console, "info");
}

/// [`init_tracing`], with the log filter to use when `RUST_LOG` is not set
/// (e.g. `"info,tower_http=debug"` to see a line per response).
pub fn init_tracing_with(console: bool, default_filter: &str) {
    init(console, default_filter, Resources::from_env());
}

/// [`init_tracing_with`] for a lab whose lesson is in tokio-console's
/// Resources view (timers, semaphores, channels): the console then sees
/// tokio's resources too, at the cost described at [`console_sees`].
/// Anyone can ask for the same with `TOKIO_CONSOLE_RESOURCES=1`.
pub fn init_tracing_with_resources(console: bool, default_filter: &str) {
    init(console, default_filter, Resources::Shown);
}

/// Whether the console layer sees tokio's resource instrumentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resources {
    Hidden,
    Shown,
}

impl Resources {
    /// `Shown` when `TOKIO_CONSOLE_RESOURCES` is set to anything but `0`.
    fn from_env() -> Resources {
        match std::env::var("TOKIO_CONSOLE_RESOURCES") {
            Ok(value) if !value.is_empty() && value != "0" => Resources::Shown,
            _ => Resources::Hidden,
        }
    }
}

fn init(console: bool, default_filter: &str, resources: Resources) {
    if console {
        if cfg!(tokio_unstable) {
            init_console(resources);
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

/// The console layer (its gRPC API on 127.0.0.1:6669; `TOKIO_CONSOLE_BIND`
/// moves it) beside the log lines, which `RUST_LOG` filters (errors only
/// unless it is set, as `console_subscriber::init` does).
fn init_console(resources: Resources) {
    let console = console_subscriber::ConsoleLayer::builder()
        .with_default_env()
        .spawn();
    let console = console.with_filter(FilterFn::new(move |meta: &Metadata<'_>| {
        resources == Resources::Shown || console_sees(meta)
    }));
    let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(tracing_subscriber::fmt::layer().with_filter(logs))
        .try_init();
}

/// Whether the console layer gets to see `meta`: everything but tokio's
/// resource instrumentation (spans named `runtime.resource…`, events with
/// targets `runtime::resource…`).
///
/// Why: every `tokio::time::sleep` (every timer, lock, channel) opens a
/// `runtime.resource` span, and each is one event on the channel from the
/// layer to the console's aggregator. A server whose tasks sleep often (lab
/// 05's leaked sections step every 10 ms: ~3,000 events a second) floods
/// that channel. The aggregator drains at most ~127 events per wake-up
/// (tokio's cooperative budget) and wakes once a second, or sooner only when
/// the channel is half full; so the backlog sits at half of its 102,400
/// events, and every task's spawn waits behind it. The console then hears of
/// a task 10 to 50 s late, after it has finished, and later drops events
/// altogether (`dropped:` in its header). A bigger buffer only lengthens the
/// wait. Without resources, a spawn reaches the console within a second.
/// The cost: an empty Resources view (see [`init_tracing_with_resources`]).
fn console_sees(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        !meta.name().starts_with("runtime.resource")
    } else {
        !meta.target().starts_with("runtime::resource")
    }
}

/// What to tell a learner whose build lacks `--cfg tokio_unstable`.
pub(crate) fn missing_tokio_unstable_help() -> &'static str {
    "tokio-console: NOT enabled. This binary was built without `--cfg tokio_unstable`, \
     which tokio-console needs. The workspace's .cargo/config.toml sets it, so something \
     replaced it, usually a RUSTFLAGS variable in your environment. Fix: `unset RUSTFLAGS` \
     (or add `--cfg tokio_unstable` to it) and run again. Continuing without the console."
}
