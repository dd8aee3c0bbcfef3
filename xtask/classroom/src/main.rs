//! `classroom`: the room's server, as `cargo xtask classroom` runs it.
//! Prints the dashboard's link and the line learners type, then serves until
//! Ctrl-C or SIGTERM. The room is kept in its SQLite file and opens again as
//! it was.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use classroom::{Classroom, Config};

/// Serve the workshop room: a live dashboard of every learner's labs.
///
/// Prints the dashboard's link (with your key) and the line learners type
/// (`cargo xtask join … --code … --name …`). Ctrl-C closes the room; it is
/// kept in its file, and opens again as it was.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask classroom", bin_name = "cargo xtask classroom")]
struct Args {
    /// The address to listen on: 127.0.0.1 (this machine only, the
    /// default), one of this machine's addresses (listed at start) for the
    /// room to join, or 0.0.0.0 for all of them.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The port (0: any free one).
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// The room's file (SQLite) [default: target/classroom/room.sqlite3,
    /// in $CARGO_TARGET_DIR if set]
    #[arg(long)]
    db: Option<PathBuf>,
    /// Start an empty room with a new code (the file's learners are dropped).
    #[arg(long)]
    new_room: bool,
    /// Past this many learners, joins are refused (503).
    #[arg(long, default_value_t = 200)]
    max_learners: usize,
    /// Minutes on the same failing test before a learner is highlighted.
    #[arg(long, default_value_t = 10.0)]
    stuck_minutes: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let db = args.db.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
        PathBuf::from(target).join("classroom").join("room.sqlite3")
    });
    let mut config = Config::new(SocketAddr::new(args.bind, args.port), db.clone());
    config.fresh = args.new_room;
    config.max_learners = args.max_learners;
    config.stuck_after = Duration::from_secs_f64(args.stuck_minutes.max(0.0) * 60.0);
    let stop = stop_signal()?;
    let room = Classroom::open(config).await?;
    let addr = room.local_addr();
    let port = addr.port();

    let already = match room.learners_at_start() {
        0 => String::new(),
        n => format!(", with the {n} learner(s) already in it"),
    };
    println!("The room is open{already} (kept in {}).\n", db.display());
    let dashboard = room.dashboard_url();
    let dashboard = if args.bind.is_unspecified() {
        dashboard.replace(&addr.ip().to_string(), &Ipv4Addr::LOCALHOST.to_string())
    } else {
        dashboard
    };
    println!("  Dashboard (yours; keep its key to yourself): {dashboard}");
    println!("  Learners type:");
    let join_addresses: Vec<IpAddr> = if args.bind.is_unspecified() {
        addresses().into_iter().filter(|(_, ip)| !ip.is_loopback()).map(|(_, ip)| ip).collect()
    } else {
        vec![addr.ip()]
    };
    for ip in &join_addresses {
        let url = format!("http://{}", SocketAddr::new(*ip, port));
        println!("    cargo xtask join {url} --code {} --name <their name>", room.code());
    }
    if args.bind.is_loopback() {
        let others: Vec<(String, IpAddr)> =
            addresses().into_iter().filter(|(_, ip)| !ip.is_loopback()).collect();
        println!("\nOn {}, only this machine can join.", args.bind);
        if others.is_empty() {
            println!("This machine has no other address: is it on the room's network?");
        } else {
            println!("For the room to join, start again with one of this machine's addresses:");
            for (interface, ip) in others {
                println!("    cargo xtask classroom --bind {ip}    ({interface})");
            }
            println!("(Listed by asking the operating system; nothing was sent to them.)");
        }
    }
    println!("\nCtrl-C closes the room; it opens again as it was.");

    stop.await;
    println!("Closing the room.");
    room.stop(Duration::from_secs(3)).await
}

/// This machine's IP addresses, with their interfaces, from the operating
/// system's list: nothing goes on the network. IPv4 first.
fn addresses() -> Vec<(String, IpAddr)> {
    let mut found: Vec<(String, IpAddr)> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|interface| match interface.ip() {
            // Link-local IPv6 (fe80::) needs a zone to be reached.
            IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(ip) => !ip.is_link_local(),
        })
        .map(|interface| (interface.name.clone(), interface.ip()))
        .collect();
    found.sort_by_key(|(_, ip)| (ip.is_ipv6(), *ip));
    found.dedup();
    found
}

/// Listens for Ctrl-C and SIGTERM (Unix) from now on, so that one sent as
/// soon as the room's lines are printed is not missed; completes on the first.
fn stop_signal() -> Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut int, mut term) =
            (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
