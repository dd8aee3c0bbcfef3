//! `cargo run -p blocking`: serves lab 01 on http://127.0.0.1:8080 (`--port` to change).
//!
//! On a single-thread runtime, like the tests use: one blocked handler stalls
//! every request, so the bug is impossible to miss with curl.

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("blocking")
        .current_thread()
        .run(blocking::app)
}
