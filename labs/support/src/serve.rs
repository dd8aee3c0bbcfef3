//! Running a lab's app: on an ephemeral port for a test, or on a known port
//! for a learner poking it with curl.
//!
//! A [`TestServer`] runs on its *own* runtime, in its own thread. That matters
//! in this course: when a starter blocks its runtime, the test's client (on the
//! test's runtime) keeps running and measures the damage, instead of freezing
//! along with the server. Dropping the `TestServer` shuts that runtime down,
//! which drops every connection and task, so nothing outlives a test.
//!
//! A `TestServer` listens on 127.0.0.1 and, where the machine has IPv6
//! loopback, on ::1 at the same port ([`LoopbackListener`]): a client from
//! ::1 is a second client address that every desktop system has without
//! configuration (see [`crate::client::SecondClient`]). Never on a wildcard
//! address: nothing but this machine can reach a test's server.

use std::future::{Future, IntoFuture};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener, ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;

/// How many threads the server's runtime has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// One thread runs every task: a handler that blocks stalls the whole server.
    CurrentThread,
    /// A pool of worker threads (tokio's default: one per core).
    MultiThread,
}

impl Flavor {
    fn runtime(self) -> std::io::Result<Runtime> {
        let mut builder = match self {
            Flavor::CurrentThread => Builder::new_current_thread(),
            Flavor::MultiThread => Builder::new_multi_thread(),
        };
        builder.enable_all().build()
    }
}

/// How a server hands the app to `axum::serve`. The difference is invisible
/// for most apps, but not for a layer with state on a router without state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Serving {
    /// `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`:
    /// handlers can extract the peer's `ConnectInfo<SocketAddr>`, and the
    /// router is finished (`with_state(())`) once, before the first connection.
    #[default]
    WithConnectInfo,
    /// `axum::serve(listener, app)`, as most `main`s write it: no `ConnectInfo`,
    /// and a router without state is finished anew for *every connection*, so
    /// each connection gets fresh copies of the layers' state (a tower
    /// `ConcurrencyLimitLayer`'s semaphore, say: axum#2582).
    PlainRouter,
}

impl Serving {
    /// `axum::serve(listener, app)` in the chosen way, ready to be awaited.
    fn serve<L>(
        self,
        listener: L,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> ServeFuture
    where
        L: axum::serve::Listener<Addr = SocketAddr>,
        for<'a> SocketAddr: Connected<IncomingStream<'a, L>>,
    {
        match self {
            Serving::WithConnectInfo => {
                let service = app.into_make_service_with_connect_info::<SocketAddr>();
                let server = axum::serve(listener, service).with_graceful_shutdown(shutdown);
                Box::pin(server.into_future())
            }
            Serving::PlainRouter => {
                let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
                Box::pin(server.into_future())
            }
        }
    }
}

type ServeFuture = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// How long a stopping server waits for its tasks before abandoning them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long dropping a [`TestServer`] waits for its thread to finish.
const THREAD_STOP_LIMIT: Duration = Duration::from_secs(5);

/// How many connections may wait to be accepted: enough for a test that
/// opens a thousand at once (std's `TcpListener::bind` asks for fewer).
const BACKLOG: u32 = 2048;

/// A lab's app served on `127.0.0.1:<ephemeral port>` (and on `[::1]` at the
/// same port, where the machine has IPv6 loopback) for the length of a test.
pub struct TestServer {
    addr: SocketAddr,
    /// The same port on ::1, if the server listens there too.
    ipv6_addr: Option<SocketAddr>,
    /// Accepted connections, where the server can count them.
    connections: Option<Arc<AtomicUsize>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `app` on a multi-thread runtime, as `#[tokio::main]` would.
    pub fn start(app: Router) -> Self {
        Self::start_on(Flavor::MultiThread, app)
    }

    /// Serves `app` on a single-thread runtime, where anything that blocks a
    /// handler blocks every request.
    pub fn start_current_thread(app: Router) -> Self {
        Self::start_on(Flavor::CurrentThread, app)
    }

    /// Serves `app` on a runtime of the given flavor.
    fn start_on(flavor: Flavor, app: Router) -> Self {
        Self::start_with(flavor, Serving::WithConnectInfo, app)
    }

    /// Serves `app` on a multi-thread runtime exactly as `axum::serve(listener, app)`
    /// does, which finishes a router without state anew for every connection
    /// (axum#2582): for labs about layers whose state all connections must share.
    pub fn start_plain(app: Router) -> Self {
        Self::start_with(Flavor::MultiThread, Serving::PlainRouter, app)
    }

    /// Runs `serve`, a lab's own serving function, on a multi-thread runtime:
    /// for labs whose lesson is the serving itself (connection timeouts,
    /// shutdown). It gets a listener on `127.0.0.1:<ephemeral port>`, and
    /// runs until the `TestServer` is dropped. Such a server cannot count its
    /// connections: [`TestServer::connections`] panics. It listens on
    /// 127.0.0.1 only, so a [`SecondClient`](crate::client::SecondClient)
    /// from ::1 cannot reach it: see [`TestServer::start_serving_on_both`].
    pub fn start_serving<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        Self::spawn(Flavor::MultiThread, None, Families::Ipv4, move |listener| {
            Box::pin(serve(listener.into_ipv4()))
        })
    }

    /// Like [`TestServer::start_serving`], for a serving function that takes
    /// any axum [`Listener`] of TCP connections: it gets one on 127.0.0.1 and,
    /// where the machine has it, on ::1 at the same port, so that every
    /// [`SecondClient`](crate::client::SecondClient) can reach it. Its
    /// connections carry their peer's `ConnectInfo<SocketAddr>` when served
    /// with `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn start_serving_on_both<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(BothLoopbacks) -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        Self::spawn(Flavor::MultiThread, None, Families::Both, move |listener| {
            Box::pin(serve(listener.tap_io(tap_nothing)))
        })
    }

    /// Serves `app` on a runtime of the given flavor, handed to `axum::serve`
    /// the given way, counting the connections it accepts.
    fn start_with(flavor: Flavor, serving: Serving, app: Router) -> Self {
        let connections = Arc::new(AtomicUsize::new(0));
        let counting = connections.clone();
        Self::spawn(flavor, Some(connections), Families::Both, move |listener| {
            let listener = listener.tap_io(move |_| {
                counting.fetch_add(1, Ordering::SeqCst);
            });
            serving.serve(listener, app, std::future::pending())
        })
    }

    /// Listens on an ephemeral port of the loopback `families`, then runs
    /// `serve` on a runtime of the given flavor, in a thread of its own, until
    /// the `TestServer` is dropped.
    fn spawn(
        flavor: Flavor,
        connections: Option<Arc<AtomicUsize>>,
        families: Families,
        serve: impl FnOnce(LoopbackListener) -> ServeFuture + Send + 'static,
    ) -> Self {
        let runtime = flavor.runtime().expect("build the server's runtime");
        // Listen before spawning the thread, so the address is known (and the
        // port already accepting) when this function returns. A tokio listener
        // belongs to a runtime: make it inside the server's own.
        let listener = {
            let _inside = runtime.enter();
            LoopbackListener::bind(families).expect("listen on 127.0.0.1:0")
        };
        let addr = listener.ipv4.local_addr().expect("local_addr");
        let ipv6_addr = listener.ipv6_addr();

        let (stop, stop_requested) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        result = serve(listener) => result.expect("test server failed"),
                        _ = stop_requested => {}
                    }
                });
                // Drops every connection and task still running.
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .expect("spawn the server thread");

        TestServer {
            addr,
            ipv6_addr,
            connections,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many TCP connections the server has accepted so far.
    ///
    /// Panics for a server started with [`TestServer::start_serving`]: the
    /// lab's own serving function accepts the connections, unseen.
    pub fn connections(&self) -> usize {
        self.connections
            .as_ref()
            .expect("a server started with `start_serving` does not count its connections")
            .load(Ordering::SeqCst)
    }

    /// The full URL of `path` on this server, e.g. `url("/health")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The URL of `path` as a client at `client` reaches the server: over
    /// IPv6 (`http://[::1]:PORT/...`) for an IPv6 client, as [`Self::url`]
    /// otherwise. A connection from ::1 can only go to an IPv6 address.
    ///
    /// Panics for an IPv6 client if the server does not listen on ::1.
    pub fn url_from(&self, client: IpAddr, path: &str) -> String {
        if client.is_ipv4() {
            return self.url(path);
        }
        let Some(addr) = self.ipv6_addr else {
            panic!(
                "a client at {client} cannot reach this test server: it listens on {} only \
                 (started with `TestServer::start_serving`, or this machine has no ::1)",
                self.addr
            )
        };
        format!("http://{addr}{path}")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A server whose only thread is stuck in a blocking handler cannot see
        // the stop request until the handler returns; wait a bounded time.
        let Some(thread) = self.thread.take() else {
            return;
        };
        let asked = Instant::now();
        while !thread.is_finished() && asked.elapsed() < THREAD_STOP_LIMIT {
            thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            eprintln!(
                "warning: the test server on {} did not stop within {THREAD_STOP_LIMIT:?} \
                 (is a handler blocking its thread?); leaving it to the end of the process",
                self.addr
            );
        }
    }
}

/// Which loopback addresses a test server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Families {
    /// 127.0.0.1 only.
    Ipv4,
    /// 127.0.0.1, and ::1 at the same port where the machine has it.
    Both,
}

/// How many ports [`LoopbackListener::bind`] tries before it gives up on
/// finding one free on both 127.0.0.1 and ::1.
const PORT_ATTEMPTS: usize = 10;

/// A listener on `127.0.0.1:PORT` and, where the machine has IPv6 loopback,
/// on `[::1]:PORT` too: two sockets, each bound to a loopback address, never
/// one bound to a wildcard address, which would listen on every interface.
///
/// As an axum [`Listener`], it hands over the connections of both, as they
/// come. Each keeps its own peer address: a client from ::1 is
/// `IpAddr::V6(::1)`, a client from 127.0.0.1 is `IpAddr::V4(127.0.0.1)`,
/// two different clients.
#[derive(Debug)]
pub struct LoopbackListener {
    ipv4: TcpListener,
    ipv6: Option<TcpListener>,
}

/// What [`TestServer::start_serving_on_both`] hands a lab's serving
/// function: a [`LoopbackListener`], wrapped (doing nothing more) the way
/// axum needs to give its connections their `ConnectInfo<SocketAddr>`, which
/// it does for a `TcpListener` and for any listener passed through
/// [`ListenerExt::tap_io`].
pub type BothLoopbacks = TapIo<LoopbackListener, fn(&mut TcpStream)>;

/// The tap of [`BothLoopbacks`]: nothing to do.
fn tap_nothing(_: &mut TcpStream) {}

impl LoopbackListener {
    /// Listens on an ephemeral port of the loopback `families`, with a long
    /// [`BACKLOG`]; must be called inside a tokio runtime. ::1 is left out
    /// where the machine has no IPv6 loopback.
    fn bind(families: Families) -> std::io::Result<Self> {
        let mut attempts = 1;
        loop {
            let ipv4 = listen((Ipv4Addr::LOCALHOST, 0).into())?;
            if families == Families::Ipv4 {
                return Ok(LoopbackListener { ipv4, ipv6: None });
            }
            let port = ipv4.local_addr()?.port();
            match listen((Ipv6Addr::LOCALHOST, port).into()) {
                Ok(ipv6) => {
                    return Ok(LoopbackListener {
                        ipv4,
                        ipv6: Some(ipv6),
                    });
                }
                // The port is free on 127.0.0.1 but taken on ::1: try another.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts < PORT_ATTEMPTS => {
                    attempts += 1;
                }
                // No IPv6 loopback here (or no port free on both): IPv4 only.
                Err(_) => return Ok(LoopbackListener { ipv4, ipv6: None }),
            }
        }
    }

    /// The address on ::1, if it listens there.
    pub fn ipv6_addr(&self) -> Option<SocketAddr> {
        self.ipv6.as_ref().and_then(|ipv6| ipv6.local_addr().ok())
    }

    /// The listener on 127.0.0.1 alone (the one on ::1, if any, is closed).
    fn into_ipv4(self) -> TcpListener {
        self.ipv4
    }
}

impl Listener for LoopbackListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    /// The next connection to either address. axum's own `accept` of each
    /// listener retries its errors; a `TcpListener`'s accept loses nothing
    /// when it is cancelled, so waiting on both and taking the first is safe.
    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        let LoopbackListener { ipv4, ipv6 } = self;
        match ipv6 {
            Some(ipv6) => tokio::select! {
                accepted = Listener::accept(ipv4) => accepted,
                accepted = Listener::accept(ipv6) => accepted,
            },
            None => Listener::accept(ipv4).await,
        }
    }

    /// The address on 127.0.0.1.
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.ipv4.local_addr()
    }
}

/// A listener on `addr` with a long [`BACKLOG`]; must be called inside a
/// tokio runtime.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The server behind `cargo run -p <lab>`.
///
/// Listens on `127.0.0.1:8080` unless `--port N` or the `PORT` variable says
/// otherwise (`0` picks a free port), prints its URL, and stops on Ctrl-C or
/// SIGTERM. `--console` or `TOKIO_CONSOLE=1` turns on tokio-console.
pub struct LabServer {
    lab: &'static str,
    flavor: Flavor,
    serving: Serving,
}

/// How long a stopping lab server lets in-flight requests finish.
const LAB_SERVER_GRACE: Duration = Duration::from_secs(3);

impl LabServer {
    /// A server for the lab named `lab` (used in its messages).
    pub fn new(lab: &'static str) -> Self {
        LabServer {
            lab,
            flavor: Flavor::MultiThread,
            serving: Serving::WithConnectInfo,
        }
    }

    /// Runs on a single-thread runtime instead of one worker per core.
    pub fn current_thread(mut self) -> Self {
        self.flavor = Flavor::CurrentThread;
        self
    }

    /// Hands the app to `axum::serve` as a plain router, as most `main`s do
    /// (a router without state is then finished anew for every connection).
    pub fn plain(mut self) -> Self {
        self.serving = Serving::PlainRouter;
        self
    }

    /// Builds the app with `make_app` (inside the runtime) and serves it until
    /// Ctrl-C or SIGTERM.
    ///
    /// A problem (a busy port, a bad argument) is said in one line, with what
    /// to do, and the process exits with status 1.
    pub fn run(self, make_app: impl FnOnce() -> Router) -> std::io::Result<()> {
        // Boxed, so that serving is compiled once here, not again in every
        // lab's binary after every edit.
        self.run_boxed(Box::new(make_app))
    }

    fn run_boxed(self, make_app: Box<dyn FnOnce() -> Router + '_>) -> std::io::Result<()> {
        let lab = self.lab;
        if let Err(error) = self.serve(make_app) {
            eprintln!("{lab}: {error}");
            std::process::exit(1);
        }
        Ok(())
    }

    fn serve(self, make_app: Box<dyn FnOnce() -> Router + '_>) -> std::io::Result<()> {
        let options = ServerArgs::parse(self.lab);
        crate::console::init_tracing(options.console);
        self.flavor.runtime()?.block_on(async move {
            let app = make_app();
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))
                .await
                .map_err(|e| {
                    let port = options.port;
                    let message = match e.kind() {
                        std::io::ErrorKind::AddrInUse => format!(
                            "port {port} is in use (is another lab server still running?); \
                             pick another: `cargo run -p {} -- --port {}`",
                            self.lab,
                            port.wrapping_add(1).max(1024)
                        ),
                        _ => format!("cannot listen on 127.0.0.1:{port}: {e}"),
                    };
                    std::io::Error::new(e.kind(), message)
                })?;
            let addr = listener.local_addr()?;
            println!("{} listening on http://{addr} (Ctrl-C to stop)", self.lab);

            let (signalled_tx, signalled_rx) = oneshot::channel::<()>();
            let server = self.serving.serve(listener, app, async move {
                shutdown_signal().await;
                let _ = signalled_tx.send(());
            });
            // Graceful shutdown waits for in-flight requests with no deadline;
            // a hung handler would keep us here forever, so bound it.
            let deadline = async move {
                if signalled_rx.await.is_ok() {
                    tokio::time::sleep(LAB_SERVER_GRACE).await;
                    eprintln!("requests still running after {LAB_SERVER_GRACE:?}; stopping anyway");
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                result = server => result,
                _ = deadline => Ok(()),
            }
        })
    }
}

/// The options of every lab server: `cargo run -p <lab> -- [--port N]
/// [--console]`, each also from the environment. A lab whose `main` takes
/// more (labs 10 and 12) flattens these into its own clap arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Listen on 127.0.0.1:N (0: any free port).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Enable tokio-console.
    #[arg(
        long,
        env = "TOKIO_CONSOLE",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub console: bool,
}

impl ServerArgs {
    /// Parses the command line of the lab called `lab`; on `--help` or a
    /// mistake, clap prints what to type and exits.
    pub fn parse(lab: &'static str) -> ServerArgs {
        use clap::{Args as _, FromArgMatches as _};
        let command = ServerArgs::augment_args(clap::Command::new(lab))
            .about(format!(
                "The server of the {lab} lab, on 127.0.0.1; Ctrl-C stops it."
            ))
            .long_about(None);
        ServerArgs::from_arg_matches(&command.get_matches()).unwrap_or_else(|error| error.exit())
    }
}

/// Completes on Ctrl-C, or on SIGTERM where there is such a thing.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
