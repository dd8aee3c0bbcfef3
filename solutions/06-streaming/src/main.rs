//! `cargo run -p streaming`: serves lab 06 on http://127.0.0.1:8080 (`--port` to change).
//! Open it in a browser, or `curl -N localhost:8080/events`.

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("streaming")
        .run(|| streaming::app(streaming::Config::default(), Default::default()))
}
