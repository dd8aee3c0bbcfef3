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

use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::process::Supervised;
use super::ui::{self, command, paint};
use crate::Workspace;
use crate::cargo_test::cargo;
use crate::labs;

/// Download and build everything a workshop needs (all labs, their tests,
/// tokio-console), so that the rest works offline.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not install tokio-console (`cargo install --locked tokio-console`).
    #[arg(long)]
    pub no_tokio_console: bool,
}

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    super::process::exit_on_signal();
    let started = Instant::now();
    let (labs, broken) = labs::discover(&workspace.root)?;
    for lab in &broken {
        anstream::println!(
            "{} {} has a broken lab.toml ({:#}); fetching the others",
            paint(ui::WARN, "warning:"),
            workspace.relative(&lab.dir),
            lab.error
        );
    }
    let packages: Vec<String> = labs
        .iter()
        .flat_map(|lab| ["--package".to_owned(), lab.package.clone()])
        .collect();

    step(workspace, "Downloading every dependency", &["fetch"])?;
    let mut test_build = vec!["test", "--no-run"];
    test_build.extend(packages.iter().map(String::as_str));
    step(
        workspace,
        "Compiling every lab and its tests (a few minutes the first time)",
        &test_build,
    )?;
    let mut server_build = vec!["build"];
    server_build.extend(packages.iter().map(String::as_str));
    step(workspace, "Compiling every lab's server", &server_build)?;

    let console_note = if super::tokio_console_installed() {
        "tokio-console is installed".to_owned()
    } else if args.no_tokio_console {
        format!(
            "tokio-console is not installed (skipped: {})",
            command("cargo install --locked tokio-console")
        )
    } else {
        step(
            workspace,
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

/// Runs `cargo <args>` at the workspace root, its output shown as it goes.
fn step(workspace: &Workspace, what: &str, args: &[&str]) -> Result<()> {
    anstream::println!("\n{} {}", paint(ui::STRONG, "==>"), paint(ui::STRONG, what));
    anstream::println!("{}", paint(ui::DIM, format!("cargo {}", args.join(" "))));
    let mut cargo = Command::new(cargo());
    cargo
        .args(args)
        .current_dir(&workspace.root)
        .env("CARGO_TARGET_DIR", &workspace.target_dir)
        // Same flags as every other build of the workbook (see check).
        .env_remove("RUSTFLAGS");
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
