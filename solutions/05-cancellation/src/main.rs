//! `cargo run -p cancellation`: serves lab 05 on http://127.0.0.1:8080 (`--port` to change).

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("cancellation")
        .run(|| cancellation::app(Default::default(), cancellation::TIMEOUT))
}
