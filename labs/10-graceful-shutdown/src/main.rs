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

use graceful_shutdown::{DEFAULT_SHUTDOWN_TIMEOUT, serve, shutdown_signal};

const LAB: &str = "graceful-shutdown";

fn main() -> ExitCode {
    let options = match Options::from_args_and_env() {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("{LAB}: {problem} (try --help)");
            return ExitCode::FAILURE;
        }
    };
    lab_support::init_tracing(options.console);
    let runtime = tokio::runtime::Runtime::new().expect("build the runtime");
    let served = runtime.block_on(async {
        let port = options.port;
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
            "{LAB} listening on http://{addr} (Ctrl-C to stop; shutdown timeout {:?})",
            options.shutdown_timeout
        );
        serve(listener, shutdown_signal(), options.shutdown_timeout).await
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

/// What the command line and the environment asked for.
struct Options {
    port: u16,
    shutdown_timeout: Duration,
    console: bool,
}

impl Options {
    fn from_args_and_env() -> Result<Self, String> {
        let mut port = std::env::var("PORT").ok();
        let mut timeout = std::env::var("SHUTDOWN_TIMEOUT").ok();
        let mut console = std::env::var("TOKIO_CONSOLE").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--port" => port = Some(args.next().ok_or("--port needs a value")?),
                "--shutdown-timeout" => {
                    timeout = Some(args.next().ok_or("--shutdown-timeout needs a value")?);
                }
                "--console" => console = true,
                "--help" | "-h" => {
                    println!(
                        "usage: cargo run -p {LAB} -- [--port N] [--shutdown-timeout SECS] [--console]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        let port = match port {
            Some(text) => text
                .parse()
                .map_err(|_| format!("not a port number: {text:?}"))?,
            None => 8080,
        };
        let shutdown_timeout = match timeout {
            Some(text) => text
                .parse::<f64>()
                .ok()
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                .ok_or_else(|| format!("not a number of seconds: {text:?}"))?,
            None => DEFAULT_SHUTDOWN_TIMEOUT,
        };
        Ok(Options {
            port,
            shutdown_timeout,
            console,
        })
    }
}
