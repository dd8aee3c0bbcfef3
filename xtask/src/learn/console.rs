//! `cargo xtask console <lab>`: watch a lab's bug happen in tokio-console. A
//! server at rest shows nothing there, hence the lab's own traffic (see [`Args`]).

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
    print_banner(workbook, &lab, &server, &args);
    let traffic =
        if args.no_traffic { None } else { built.start_traffic(server.addr, Echo::Shown)? };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reason = runtime.block_on(async {
        let limit = tokio::time::sleep(args.duration.map_or(Duration::MAX, Duration::from_secs));
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

fn print_banner(workbook: &Workbook, lab: &Lab, server: &RunningServer, args: &Args) {
    let console = &lab.console;
    let (what, dir, look_for) = match args.solution {
        false => ("your code in", lab.dir.clone(), &console.starter),
        true => ("the solution in", lab.solution_dir(), &console.solution),
    };
    let (title, label, dir) = (paint(ui::STRONG, "Console:"), lab.label(), workbook.relative(&dir));
    anstream::println!("\n{title} lab {label} ({what} {dir}) runs with tokio-console enabled.\n");
    anstream::println!("  server    http://{}", server.addr);
    let open = command(format!("tokio-console http://{}", server.console));
    let there = paint(ui::DIM, "<- run this in another terminal");
    anstream::println!("  console   {open}   {there}");
    if !process::on_path("tokio-console") {
        let install = command("cargo install --locked tokio-console");
        let missing = format!("tokio-console is not installed: {install} (takes a few minutes)");
        anstream::println!("            {} {missing}", paint(ui::WARN, "!"));
    }
    let traffic = match (&console.traffic, args.no_traffic) {
        (_, true) => "none (--no-traffic); try curl against the server.",
        (Some(traffic), false) => traffic.as_str(),
        (None, false) => "none for this lab; use the curl commands of its chapter.",
    };
    anstream::println!("\n{}", ui::wrap(&format!("Traffic: {traffic}"), "", 78).trim_end());
    let look_for = look_for
        .as_deref()
        .unwrap_or("Send a few requests with curl and watch the tasks they create.");
    anstream::println!("\n{}", paint(ui::STRONG, "What to look for:"));
    anstream::println!("{}", ui::wrap(look_for, "  ", 78).trim_end());
    if !args.solution && console.solution.is_some() {
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
