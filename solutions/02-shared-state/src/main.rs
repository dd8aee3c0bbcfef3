//! `cargo run -p shared-state`: serves lab 02 on http://127.0.0.1:8080 (`--port` to change).

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("shared-state").run(shared_state::app)
}
