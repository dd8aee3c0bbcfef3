//! `cargo run -p hello`: serves lab 00 on http://127.0.0.1:8080 (`--port` to change).

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("hello").run(hello::app)
}
