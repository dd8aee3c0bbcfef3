//! Tests of the support crate itself: the helpers every lab's tests stand on.
//!
//! These run with a plain `cargo test` at the workspace root (the support
//! crate is a default member), and inside `cargo xtask verify`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing;
use lab_support::client::{
    Burst, SECOND_CLIENT_ADDRESSES, SecondClient, burst, client_from, get, human, leave_after,
    leave_early, pick_second_address, send, try_send,
};
use lab_support::upstream::Upstream;
use lab_support::{TestServer, eventually, within};
use reqwest::Client;

const LIMIT: Duration = Duration::from_secs(10);

fn sleepy_app() -> Router {
    Router::new().route(
        "/nap",
        routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            "rested"
        }),
    )
}

/// `count` GETs of `url` sent at once, within [`LIMIT`].
async fn burst_of(client: &Client, count: usize, url: &str) -> Burst {
    let what = format!("{count} × GET {url}");
    within(LIMIT, &what, burst(count, |_| client.get(url))).await
}

/// The burst, once every reply was a 200.
async fn all_ok(burst: impl Future<Output = Burst>) -> Burst {
    let burst = burst.await;
    assert_eq!(burst.statuses(), vec![200; burst.replies.len()]);
    burst
}

#[tokio::test]
async fn test_server_serves_until_dropped() {
    let server = TestServer::start(sleepy_app());
    let url = server.url("/nap");
    let reply = within(LIMIT, "GET /nap", get(&url)).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, "rested")
    );
    assert_eq!(server.connections(), 1);

    drop(server);
    let after = within(LIMIT, "GET after drop", try_send(Client::new().get(&url))).await;
    assert!(
        after.is_err(),
        "a dropped server must refuse connections, got {after:?}"
    );
}

#[tokio::test]
async fn burst_sends_its_requests_at_once() {
    let server = TestServer::start(sleepy_app());
    let client = Client::new();
    let five = all_ok(burst_of(&client, 5, &server.url("/nap"))).await;
    // One after another they would take 1 s.
    assert!(
        five.elapsed < Duration::from_millis(700),
        "5 naps of 200 ms took {:?}",
        five.elapsed
    );
    assert_eq!(
        server.connections(),
        5,
        "one connection per concurrent request"
    );
}

#[tokio::test]
#[should_panic(expected = "waiting for a future that never ends")]
async fn within_names_what_hung() {
    within(
        Duration::from_millis(50),
        "a future that never ends",
        std::future::pending::<()>(),
    )
    .await;
}

/// An app that answers `GET /peer` with the client's IP, as the server saw it.
fn peer_app() -> Router {
    Router::new().route(
        "/peer",
        routing::get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() },
        ),
    )
}

/// Whether this machine can send from `address`.
fn has(address: IpAddr) -> bool {
    std::net::TcpListener::bind((address, 0)).is_ok()
}

/// `GET /peer` on `server` from `source`: the address the server saw.
async fn peer_seen_from(server: &TestServer, source: IpAddr) -> String {
    let request = client_from(source).get(server.url_from(source, "/peer"));
    within(LIMIT, &format!("GET /peer from {source}"), send(request))
        .await
        .body
}

/// A test server is reached from 127.0.0.1 and from each second client
/// address this machine has (127.0.0.2, ::1), and sees each as a client IP of
/// its own: the second client of lab tests works whichever address it gets.
/// Where the machine has neither, this fails as those lab tests do, saying
/// what the machine lacks.
#[tokio::test]
async fn a_test_server_sees_each_loopback_client_as_itself() {
    let server = TestServer::start(peer_app());
    let usable: Vec<IpAddr> = SECOND_CLIENT_ADDRESSES
        .into_iter()
        .filter(|address| has(*address))
        .collect();
    let second = SecondClient::find().unwrap_or_else(|missing| panic!("{missing}"));
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for source in std::iter::once(localhost).chain(usable) {
        assert_eq!(peer_seen_from(&server, source).await, source.to_string());
    }

    let reply = within(LIMIT, "GET /peer", send(second.get(&server, "/peer"))).await;
    assert_eq!(reply.body, second.ip().to_string());
    assert_ne!(second.ip(), localhost);
}

/// The second client's address: 127.0.0.2 where the machine has it, ::1
/// where it has only that (macOS), and where it has neither, a message that
/// names both and says how to get one.
#[test]
fn the_second_address_is_the_first_the_machine_has() {
    let v4 = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let missing = |address: IpAddr| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("no {address} here"),
        )
    };
    assert_eq!(pick_second_address(|_| Ok(())).unwrap(), v4);
    let only_v6 = pick_second_address(|a| if a == v6 { Ok(()) } else { Err(missing(a)) });
    assert_eq!(only_v6.unwrap(), v6);
    let only_v4 = pick_second_address(|a| if a == v4 { Ok(()) } else { Err(missing(a)) });
    assert_eq!(only_v4.unwrap(), v4);

    let neither = pick_second_address(|a| Err(missing(a)))
        .expect_err("no address usable")
        .to_string();
    for said in [
        "127.0.0.2",
        "no 127.0.0.2 here",
        "::1 (IPv6 loopback)",
        "no ::1 here",
        "sudo ifconfig lo0 alias 127.0.0.2 up",
    ] {
        assert!(neither.contains(said), "{said:?} missing from:\n{neither}");
    }
}

/// A lab's own serving function, generic over axum's `Listener` as
/// `axum::serve` is, with the peer's address for the handlers.
async fn serve_with_peers<L>(listener: L, app: Router) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// `start_serving_on_both` gives a lab's own serving function a listener on
/// 127.0.0.1 and (where the machine has it) ::1 at the same port, whose
/// connections carry their peer's address; `start_serving` gives 127.0.0.1
/// alone.
#[tokio::test]
async fn a_serving_function_can_listen_on_both_loopbacks() {
    let server =
        TestServer::start_serving_on_both(|listener| serve_with_peers(listener, peer_app()));
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(peer_seen_from(&server, localhost).await, "127.0.0.1");
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if has(v6) {
        assert_eq!(peer_seen_from(&server, v6).await, "::1");
        assert_eq!(
            server.url_from(v6, "/peer"),
            format!("http://[::1]:{}/peer", server.addr().port())
        );
    }

    let ipv4_only = TestServer::start_serving(|listener| serve_with_peers(listener, peer_app()));
    assert_eq!(peer_seen_from(&ipv4_only, localhost).await, "127.0.0.1");
}

#[tokio::test]
async fn upstream_counts_connections() {
    let upstream = Upstream::start();
    for _ in 0..3 {
        within(LIMIT, "GET /ok, new client", get(&upstream.url("/ok"))).await;
    }
    assert_eq!(
        upstream.connections(),
        3,
        "a new client per request opens a new connection"
    );

    let shared = Client::new();
    for _ in 0..3 {
        within(
            LIMIT,
            "GET /ok, shared client",
            send(shared.get(upstream.url("/ok"))),
        )
        .await;
    }
    assert!(
        upstream.connections() <= 4,
        "a shared client reuses its connection"
    );
    assert_eq!(upstream.requests_completed(), 6);
}

#[tokio::test]
async fn upstream_reports_peak_concurrency() {
    let upstream = Upstream::start();
    let client = Client::new();
    let three = all_ok(burst_of(&client, 3, &upstream.url("/slow/200"))).await;
    assert!(
        three
            .replies
            .iter()
            .all(|r| r.elapsed >= Duration::from_millis(200))
    );
    assert_eq!(upstream.max_in_flight(), 3);
    assert_eq!(upstream.in_flight(), 0);
}

#[tokio::test]
async fn upstream_can_fail_and_stream() {
    let upstream = Upstream::start();
    let failed = within(LIMIT, "GET /fail", get(&upstream.url("/fail"))).await;
    assert_eq!(failed.status, 500);
    let streamed = within(
        LIMIT,
        "GET /stream/3/10",
        get(&upstream.url("/stream/3/10")),
    )
    .await;
    assert_eq!(streamed.body, "chunk 0\nchunk 1\nchunk 2\n");
}

#[tokio::test]
async fn a_caller_that_leaves_is_seen_as_cancelled() {
    let upstream = Upstream::start();
    let status = within(
        LIMIT,
        "leave /hang",
        leave_after(upstream.addr(), "/hang", Duration::from_millis(100)),
    )
    .await;
    assert_eq!(status, None, "/hang must not answer");
    assert!(
        eventually(LIMIT, || upstream.requests_cancelled() == 1).await,
        "the upstream never saw the cancellation"
    );
    assert_eq!(
        (upstream.in_flight(), upstream.requests_completed()),
        (0, 0)
    );

    let answered = within(
        LIMIT,
        "leave /ok",
        leave_after(upstream.addr(), "/ok", Duration::from_millis(500)),
    )
    .await;
    assert_eq!(answered.as_deref(), Some("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn eventually_says_whether_the_condition_came_true_in_time() {
    let mut checks = 0;
    let counted_to_three = eventually(LIMIT, || {
        checks += 1;
        checks == 3
    })
    .await;
    assert!(counted_to_three);
    assert!(!eventually(Duration::from_millis(50), || false).await);
}

#[tokio::test]
async fn leave_early_hangs_up_and_never_panics() {
    let upstream = Upstream::start();
    within(
        LIMIT,
        "leave /hang early",
        leave_early(&upstream.url("/hang"), Duration::from_millis(50)),
    )
    .await;
    assert!(
        eventually(LIMIT, || upstream.requests_cancelled() == 1).await,
        "the upstream never saw the client leave"
    );

    let gone = upstream.url("/hang");
    drop(upstream);
    // Nobody listens any more: the visit ends at once, quietly.
    within(
        LIMIT,
        "leave a closed port",
        leave_early(&gone, Duration::from_secs(60)),
    )
    .await;
}

#[test]
fn durations_are_shown_in_a_readable_unit() {
    assert_eq!(human(Duration::from_micros(800)), "0.8 ms");
    assert_eq!(human(Duration::from_millis(250)), "250 ms");
    assert_eq!(human(Duration::from_millis(1020)), "1.02 s");
}
