//! `cargo xtask fetch`: get ready for a workshop while the network works.
//!
//! Conference Wi-Fi is where workshops go to die. This downloads every
//! dependency and compiles every lab (its library, its server and its tests,
//! exactly as `cargo test -p <lab>` and `cargo run -p <lab>` will want them),
//! and installs tokio-console, so that everything afterwards works offline.
//!
//! The labs are built together with `-p` for each, never with `--workspace`:
//! the xtask's own dependencies would change the features of some shared
//! crates, and the learner's `cargo test -p <lab>` would then compile them
//! all over again.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

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
    crate::process::exit_on_signal();
    let started = Instant::now();
    let (labs, broken) = workbook.labs()?;
    for lab in &broken {
        let problem = format!(
            "{} has a broken lab.toml ({:#}); fetching the others",
            workbook.relative(&lab.dir),
            lab.error
        );
        anstream::println!("{} {problem}", paint(ui::WARN, "warning:"));
    }
    // Every lab and its solution (`console --solution`, `cargo run -p <lab>-solution`).
    let packages: Vec<String> = labs.iter().flat_map(Lab::package_args).collect();

    step(workbook, "Downloading every dependency", &["fetch"])?;
    let mut test_build = vec!["test", "--no-run"];
    test_build.extend(packages.iter().map(String::as_str));
    step(
        workbook,
        "Compiling every lab and its tests (a few minutes the first time)",
        &test_build,
    )?;
    // `--bins`: a lab and its solution share a library name, and building both
    // libraries as targets of their own would put two files at one path.
    let mut server_build = vec!["build", "--bins"];
    server_build.extend(packages.iter().map(String::as_str));
    step(workbook, "Compiling every lab's server", &server_build)?;

    let console_note = if crate::process::on_path("tokio-console") {
        "tokio-console is installed".to_owned()
    } else if args.no_tokio_console {
        format!(
            "tokio-console is not installed (skipped: {})",
            command("cargo install --locked tokio-console")
        )
    } else {
        step(
            workbook,
            "Installing tokio-console (about 4 minutes)",
            &["install", "--locked", "tokio-console"],
        )?;
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
        // `cargo install` builds in a directory of its own; do not send it
        // into the workbook's target directory.
        cargo.env_remove("CARGO_TARGET_DIR");
    }
    let status = Supervised::spawn(&mut cargo)
        .context("could not start cargo")?
        .wait()
        .context("waiting for cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed (see above)", args.join(" "));
    }
    Ok(())
}
