//! `cargo run -p graceful-shutdown`: serves lab 10 on http://127.0.0.1:8080.
//!
//! Options (each also from the environment):
//! - `--port N` (`PORT`): the port; 0 picks a free one.
//! - `--shutdown-timeout SECS` (`SHUTDOWN_TIMEOUT`): the longest a shutdown
//!   may take, 30 s unless said otherwise (the tests use about 1 s).
//! - `--console` (`TOKIO_CONSOLE=1`): enable tokio-console.
//!
//! Serving and stopping are this lab's lesson, so `main` does what the other
//! labs leave to `lab_support::LabServer`: it binds the listener, says where,
//! and hands it to `graceful_shutdown::serve` with the stop signal and the
//! deadline. When `serve` returns, so does `main`, and the runtime goes with
//! everything still running on it.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use graceful_shutdown::{DEFAULT_SHUTDOWN_TIMEOUT, serve, shutdown_signal};

const LAB: &str = "graceful-shutdown";

/// Lab 10's server, on 127.0.0.1; Ctrl-C or SIGTERM stops it gracefully.
#[derive(Debug, Parser)]
#[command(name = LAB)]
struct Options {
    #[command(flatten)]
    server: lab_support::ServerArgs,
    /// The longest a shutdown may take, in seconds (e.g. 30 or 0.5).
    #[arg(long, env = "SHUTDOWN_TIMEOUT", value_parser = seconds,
          default_value_t = DEFAULT_SHUTDOWN_TIMEOUT.as_secs_f64())]
    shutdown_timeout: f64,
}

/// A number of seconds that a `Duration` can hold.
fn seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|secs| Duration::try_from_secs_f64(*secs).is_ok())
        .ok_or_else(|| format!("not a number of seconds: {text:?}"))
}

fn main() -> ExitCode {
    let options = Options::parse();
    let shutdown_timeout = Duration::from_secs_f64(options.shutdown_timeout);
    lab_support::init_tracing(options.server.console);
    let runtime = tokio::runtime::Runtime::new().expect("build the runtime");
    let served = runtime.block_on(async {
        let port = options.server.port;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => std::io::Error::new(
                    e.kind(),
                    format!("port {port} is in use; pick another with --port"),
                ),
                _ => e,
            })?;
        let addr = listener.local_addr()?;
        println!(
            "{LAB} listening on http://{addr} (Ctrl-C to stop; shutdown timeout {shutdown_timeout:?})"
        );
        serve(listener, shutdown_signal(), shutdown_timeout).await
    });
    match served {
        Ok(()) => {
            println!("{LAB}: stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{LAB}: {error}");
            ExitCode::FAILURE
        }
    }
}
