//! `cargo run -p worker-pool`: serves lab 07 on http://127.0.0.1:8080 (`--port` to change),
//! with a pool of `DEFAULT_SIZE` unless `WORKERS` and `QUEUE` say otherwise.

use worker_pool::{PoolSize, Stats, app};

fn main() -> std::io::Result<()> {
    let size = PoolSize::from_env().unwrap_or_else(|problem| {
        eprintln!("worker-pool: {problem}");
        std::process::exit(1);
    });
    println!(
        "a pool of {} workers and a queue of {} (WORKERS=.. QUEUE=.. to change)",
        size.workers, size.queue
    );
    lab_support::LabServer::new("worker-pool").run(move || app(size, Stats::default()))
}
