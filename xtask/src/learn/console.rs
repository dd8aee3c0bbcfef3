//! `cargo xtask console <lab>`: watch a lab's bug happen in tokio-console.
//!
//! tokio-console shows a running program's tasks: how many there are, how
//! long each has been busy or idle, where it was spawned. That makes the bugs
//! of this course visible. But a server at rest shows nothing, so this verb
//! does three things at once:
//!
//! 1. builds and starts the lab's server with the console enabled (your code
//!    or, with `--solution`, the solution crate), on 127.0.0.1 only, with the
//!    console's port moved if 6669 is taken;
//! 2. runs the lab's own traffic, `labs/NN-slug/examples/traffic.rs`, and
//!    shows what it reports;
//! 3. says what to look for (the `[console]` table of the lab's `lab.toml`)
//!    and the exact `tokio-console` command to run.
//!
//! Ctrl-C (or SIGTERM) stops the traffic and the server: both are supervised
//! children, so they never outlive the tool.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::progress::{self, Progress};
use crate::server::{Echo, LabExecutables, Ports, RunningServer, SERVER_EXITED, Variant};
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook};
use crate::{git, process};

/// How long the traffic may go on reporting after the server has exited.
const TRAFFIC_LAST_WORDS: Duration = Duration::from_secs(2);

/// Run a lab's server under tokio-console, with traffic that shows its bug.
///
/// Builds the lab (your code, or --solution), starts its server with
/// console-subscriber on, drives the lab's traffic (its
/// examples/traffic.rs), and tells you what to look for and how to open
/// tokio-console. Ctrl-C stops everything.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`blocking`) or number (`1`).
    pub lab: String,
    /// Run the solution crate instead of your code.
    #[arg(long, conflicts_with = "starter")]
    pub solution: bool,
    /// Run the starter: your lab, which must still be as committed.
    #[arg(long)]
    pub starter: bool,
    /// The server's port (default: 8080, or a free one if 8080 is taken).
    #[arg(long)]
    pub port: Option<u16>,
    /// The console's port (default: 6669, or a free one if 6669 is taken).
    #[arg(long)]
    pub console_port: Option<u16>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Start the server, but send it no traffic.
    #[arg(long)]
    pub no_traffic: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let lab = workbook.lab(&args.lab)?;
    let variant = if args.solution { Variant::Solution } else { Variant::Lab };
    if args.starter && git::changes(&workbook.root, &lab.dir).is_some_and(|c| !c.is_empty()) {
        bail!(
            "{} differs from the committed starter, so --starter cannot run it as committed. \
             Leave out --starter to run your code, or `cargo xtask reset {}` first.",
            workbook.relative(&lab.dir),
            lab.slug
        );
    }
    let ports = Ports::choose(args.port, args.console_port)?;
    let built = LabExecutables::build(workbook, &lab, variant)?;
    // From here on, the first Ctrl-C stops traffic and server tidily.
    process::handle_stop_myself();
    let mut server = built.start_server(&lab, ports, Echo::Shown)?;
    print_banner(workbook, &lab, variant, &server, args.no_traffic);
    let traffic = match args.no_traffic {
        false => built.start_traffic(server.addr, Echo::Shown)?,
        true => None,
    };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reason = runtime.block_on(async {
        let limit = async {
            match args.duration {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = process::stop_requested() => "stopped",
            _ = limit => "time is up",
            exited = server.exited() => exited,
        };
        if traffic.is_some() && reason == SERVER_EXITED {
            // How the clients in flight ended (answered, cut off) is the
            // point of a lab about stopping: let the traffic say it.
            tokio::time::sleep(TRAFFIC_LAST_WORDS).await;
        }
        reason
    });
    drop(traffic);
    let stopped = server.stop();
    anstream::println!("\n{} ({reason}); {stopped}.", paint(ui::STRONG, "Done"));
    Ok(ExitCode::SUCCESS)
}

fn print_banner(
    workbook: &Workbook,
    lab: &Lab,
    variant: Variant,
    server: &RunningServer,
    no_traffic: bool,
) {
    let what = match variant {
        Variant::Lab => "your code in",
        Variant::Solution => "the solution in",
    };
    let (title, label, dir) =
        (paint(ui::STRONG, "Console:"), lab.label(), workbook.relative(&variant.dir(lab)));
    anstream::println!("\n{title} lab {label} ({what} {dir}) runs with tokio-console enabled.\n");
    anstream::println!("  server    http://{}", server.addr);
    let (console, there) = (
        command(format!("tokio-console http://{}", server.console)),
        paint(ui::DIM, "<- run this in another terminal"),
    );
    anstream::println!("  console   {console}   {there}");
    if !process::on_path("tokio-console") {
        let (bang, install) =
            (paint(ui::WARN, "!"), command("cargo install --locked tokio-console"));
        anstream::println!(
            "            {bang} tokio-console is not installed: {install} (takes a few minutes)"
        );
    }
    let console = &lab.console;
    let traffic = match (&console.traffic, no_traffic) {
        (_, true) => "none (--no-traffic); try curl against the server.",
        (Some(traffic), false) => traffic.as_str(),
        (None, false) => "none for this lab; use the curl commands of its chapter.",
    };
    anstream::println!("\n{}", ui::wrap(&format!("Traffic: {traffic}"), "", 78).trim_end());
    let look_for = match variant {
        Variant::Lab => &console.starter,
        Variant::Solution => &console.solution,
    };
    let look_for = look_for
        .as_deref()
        .unwrap_or("Send a few requests with curl and watch the tasks they create.");
    anstream::println!("\n{}", paint(ui::STRONG, "What to look for:"));
    anstream::println!("{}", ui::wrap(look_for, "  ", 78).trim_end());
    if variant == Variant::Lab && console.solution.is_some() {
        // The solution's picture gives the fix away: offer it once the lab
        // passes, and before that only as what it is.
        let progress = Progress::load(&workbook.root);
        let solution = format!("`cargo xtask console {} --solution`", lab.slug);
        let compare = match progress::state(workbook, lab, &progress).passing() {
            true => format!("Your lab passes: compare with the reference fix, {solution}."),
            false => format!(
                "Once your lab passes, {solution} shows the reference fix the same way \
                 (a spoiler until then)."
            ),
        };
        anstream::println!("{}", ui::wrap(&compare, "  ", 78).trim_end());
    }
    anstream::println!();
    ui::note("Ctrl-C stops the traffic and the server.\n");
}
