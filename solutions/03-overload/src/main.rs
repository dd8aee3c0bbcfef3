//! `cargo run -p overload`: serves lab 03 on http://127.0.0.1:8080 (`--port` to change),
//! running at most `DEFAULT_MAX_IN_FLIGHT` jobs at once.

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("overload")
        .plain()
        .run(|| overload::app(overload::DEFAULT_MAX_IN_FLIGHT, overload::Jobs::default()))
}
