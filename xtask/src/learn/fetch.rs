//! `cargo xtask fetch`: get ready for a workshop while the network works.
//! Downloads every dependency, compiles every lab as `cargo test -p` and
//! `cargo run -p` want it, installs tokio-console. The labs are named with
//! `-p`, never `--workspace`: the xtask's dependencies would change shared
//! crates' features, and every lab would compile again.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::process::Supervised;
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook};

/// Download and build everything a workshop needs (all labs, their tests,
/// tokio-console), so that the rest works offline.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not install tokio-console (`cargo install --locked tokio-console`).
    #[arg(long)]
    pub no_tokio_console: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let (labs, broken) = workbook.labs()?;
    for lab in &broken {
        let (dir, error) = (workbook.relative(&lab.dir), &lab.error);
        let problem = format!("{dir} has a broken lab.toml ({error:#}); fetching the others");
        anstream::println!("{} {problem}", paint(ui::WARN, "warning:"));
    }
    // Every lab and its solution (`console --solution`, `cargo run -p <lab>-solution`).
    let packages: Vec<String> = labs.iter().flat_map(Lab::package_args).collect();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();

    step(workbook, "Downloading every dependency", &["fetch"])?;
    let tests = [&["test", "--no-run"][..], &packages].concat();
    step(workbook, "Compiling every lab and its tests (a few minutes the first time)", &tests)?;
    // `--bins`: a lab and its solution share a library name; building both
    // libraries as targets of their own would put two files at one path.
    let servers = [&["build", "--bins"][..], &packages].concat();
    step(workbook, "Compiling every lab's server", &servers)?;

    let install = ["install", "--locked", "tokio-console"];
    let console_note = if crate::process::on_path("tokio-console") {
        "tokio-console is installed".to_owned()
    } else if args.no_tokio_console {
        format!("tokio-console is not installed (skipped: {})", command(install.join(" ")))
    } else {
        step(workbook, "Installing tokio-console (about 4 minutes)", &install)?;
        "tokio-console is installed".to_owned()
    };

    anstream::println!(
        "\n{} Ready for offline use ({:.0} s): {} labs compiled with their tests, {console_note}.\n\
         To be sure nothing reaches for the network, {} in your shell.",
        paint(ui::PASS, "✓"),
        started.elapsed().as_secs_f64(),
        labs.len(),
        command("export CARGO_NET_OFFLINE=true")
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `cargo <args>` at the workbook's root, its output shown as it goes.
fn step(workbook: &Workbook, what: &str, args: &[&str]) -> Result<()> {
    anstream::println!("\n{} {}", paint(ui::STRONG, "==>"), paint(ui::STRONG, what));
    ui::note(format!("cargo {}", args.join(" ")));
    let mut cargo = crate::cargo::command(workbook);
    cargo.args(args);
    if args.first() == Some(&"install") {
        cargo.env_remove("CARGO_TARGET_DIR"); // it builds in a directory of its own
    }
    let status = Supervised::spawn(&mut cargo)
        .context("could not start cargo")?
        .wait()
        .context("waiting for cargo")?;
    ensure!(status.success(), "`cargo {}` failed (see above)", args.join(" "));
    Ok(())
}
