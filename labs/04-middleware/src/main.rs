//! `cargo run -p middleware`: serves lab 04 on http://127.0.0.1:8080 (`--port` to change):
//! 100 requests a minute per client IP, `/api/*` behind the token in `API_TOKEN`
//! (default `let-me-in`), `X-Forwarded-For` believed only from the IPs in
//! `TRUSTED_PROXIES` (comma-separated; none by default).

fn main() -> std::io::Result<()> {
    lab_support::LabServer::new("middleware")
        .run(|| middleware::app(middleware::Config::from_env()))
}
