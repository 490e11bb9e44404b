//! The server's connection handling: its own accept loop over hyper's HTTP/1.1 connections, so
//! slow, idle or numerous clients cannot hold the process (issue 14, "bounded server").
//!
//! Each connection is in one phase at a time, and every phase but `Working` has a deadline:
//! - `Head`: a new connection, or one that started sending its next request — the whole request
//!   head must arrive within `--header-timeout` (from the accept, or from the first byte of the
//!   next request);
//! - `Body`: the head has arrived and its body is coming — the whole body must arrive within
//!   `--body-timeout` of the head (the request gets `408 request.body_timeout`, the connection is
//!   closed);
//! - `Working`: the handler runs — no deadline of its own (its database work is bounded by the
//!   request's size);
//! - `Sending`: the answer is being written — the client must read it within `--body-timeout`
//!   too, so a client that reads slowly cannot hold the connection either;
//! - `Idle`: between requests (keep-alive) — closed after `--idle-timeout` without a byte.
//!
//! At most `--max-connections` connections are open. A new connection beyond that evicts the open
//! connection that has waited longest without a request being worked on (a head or an idle
//! connection first, then one still sending its body or reading its answer), so a crowd of slow
//! clients cannot lock out a quick one; when every open connection is working, the new one waits
//! up to [`ACCEPT_WAIT`] for a slot, then is closed. The listener is not read while waiting: further connections wait in
//! the kernel's backlog and cost the process no descriptor. A failed accept (out of descriptors)
//! pauses the loop briefly instead of spinning.
//!
//! Each request carries the peer address as [`axum::extract::ConnectInfo`] (for per-IP rate
//! limits, [`crate::limits`]) and a [`BodyTimedOut`] flag that [`crate::errors`] turns into the
//! `408` answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// Default of `--max-connections`: well under the usual 1,024-descriptor limit, leaving room for
/// the database, logs and the listener.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;
/// Default of `--header-timeout` (seconds).
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default of `--body-timeout` (seconds): a device's push (at most a few hundred kB in practice)
/// over a slow mobile link; the device client gives up on a request after 60 s too.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;
/// Default of `--idle-timeout` (seconds).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// How long a new connection waits for a slot when every open connection is working.
pub const ACCEPT_WAIT: Duration = Duration::from_millis(500);
/// How long a connection past its body deadline has to deliver the `408` answer before it is
/// closed anyway.
const BODY_ANSWER_GRACE: Duration = Duration::from_secs(2);
/// How long shutdown waits for open requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Pause after a failed accept (for example out of descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The connection limits (`weldguard-server --help` shows them with their defaults).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct TransportOptions {
    /// Most connections open at once. Beyond it a new connection evicts the one waiting longest
    /// without a request being worked on (slow or idle), or waits 0.5 s for a slot and is closed.
    /// Keep it under the process's descriptor limit (`ulimit -n`) minus about 64.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds a client has to send a whole request head (from connecting, or from the first
    /// byte of its next request); then the connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a client has to send a whole request body after its head (then it gets `408`
    /// and the connection is closed), and to read a whole answer (then the connection is closed).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_BODY_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may stay idle between requests.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT_SECS,
            body_timeout: DEFAULT_BODY_TIMEOUT_SECS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT_SECS,
        }
    }
}

impl TransportOptions {
    fn header(&self) -> Duration {
        Duration::from_secs(self.header_timeout)
    }
    fn body(&self) -> Duration {
        Duration::from_secs(self.body_timeout)
    }
    fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }
}

/// Set on a request whose body did not arrive within the body timeout.
#[derive(Debug, Clone, Default)]
pub struct BodyTimedOut(Arc<AtomicBool>);

impl BodyTimedOut {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where a connection is (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    Working,
    Sending,
    Idle,
}

/// One open connection as the accept loop and its own task see it.
struct Conn {
    /// The phase and since when.
    state: Mutex<(Phase, Instant)>,
    evict: Notify,
    evicted: AtomicBool,
}

impl Conn {
    fn new() -> Self {
        Conn {
            state: Mutex::new((Phase::Head, Instant::now())),
            evict: Notify::new(),
            evicted: AtomicBool::new(false),
        }
    }

    fn get(&self) -> (Phase, Instant) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, phase: Phase) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = (phase, Instant::now());
    }

    /// Bytes came in: on an idle connection, that starts the next request's head.
    fn bytes_arrived(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 == Phase::Idle {
            *state = (Phase::Head, Instant::now());
        }
    }

    /// The body arrived in full: the handler has it.
    fn body_done(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 == Phase::Body {
            *state = (Phase::Working, Instant::now());
        }
    }

    /// When the current phase runs out; `None` while working.
    fn deadline(&self, limits: &TransportOptions) -> Option<Instant> {
        let (phase, since) = self.get();
        deadline_of(phase, since, limits)
    }
}

fn deadline_of(phase: Phase, since: Instant, limits: &TransportOptions) -> Option<Instant> {
    match phase {
        Phase::Head => Some(since + limits.header()),
        Phase::Body => Some(since + limits.body() + BODY_ANSWER_GRACE),
        Phase::Sending => Some(since + limits.body()),
        Phase::Idle => Some(since + limits.idle()),
        Phase::Working => None,
    }
}

/// Which open connection a newcomer evicts: the one waiting longest for a head or idle, else
/// the one sending its body or reading its answer longest; never one being worked on.
fn pick_victim<'a, K: Copy + 'a>(
    conns: impl Iterator<Item = (K, Phase, Instant)> + Clone,
) -> Option<K> {
    let oldest = |wanted: &[Phase]| {
        conns
            .clone()
            .filter(|(_, phase, _)| wanted.contains(phase))
            .min_by_key(|(_, _, since)| *since)
            .map(|(k, _, _)| k)
    };
    oldest(&[Phase::Head, Phase::Idle]).or_else(|| oldest(&[Phase::Body, Phase::Sending]))
}

/// The open connections.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn add(self: &Arc<Self>) -> (Arc<Conn>, Entry) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new());
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, conn.clone());
        (
            conn,
            Entry {
                id,
                registry: self.clone(),
            },
        )
    }

    /// Ask one connection to close to make room; false when none may be evicted.
    fn evict_one(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let candidates = open
            .iter()
            .filter(|(_, c)| !c.evicted.load(Ordering::Relaxed))
            .map(|(id, c)| {
                let (phase, since) = c.get();
                (*id, phase, since)
            })
            .collect::<Vec<_>>();
        let Some(id) = pick_victim(candidates.iter().copied()) else {
            return false;
        };
        match open.get(&id) {
            Some(conn) => {
                conn.evicted.store(true, Ordering::Relaxed);
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes its connection from the registry when the connection's task ends.
struct Entry {
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.registry
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Serve `app` on `listener` until `shutdown` completes, then let open requests finish (for at
/// most 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: TransportOptions,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max as usize));
    let registry = Arc::new(Registry::default());
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let Some(permit) = slot(&slots, &registry).await else {
            tracing::warn!(peer = %peer, "connection refused: every slot is working");
            drop(stream);
            continue;
        };
        let (conn, entry) = registry.add();
        tokio::spawn(connection(Connection {
            stream,
            peer,
            app: app.clone(),
            conn,
            limits: limits.clone(),
            stopping: stopping.clone(),
            _permit: permit,
            _entry: entry,
        }));
    }
    let _ = stop.send(true);
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(max)).await;
}

/// A free connection slot: at once, after evicting a connection, or after a short wait.
async fn slot(slots: &Arc<Semaphore>, registry: &Registry) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return Some(permit);
    }
    registry.evict_one();
    tokio::time::timeout(ACCEPT_WAIT, slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// What one connection's task owns.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    conn: Arc<Conn>,
    limits: TransportOptions,
    stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    _entry: Entry,
}

async fn connection(mut c: Connection) {
    let _ = c.stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        stream: c.stream,
        conn: c.conn.clone(),
    });
    let service = ConnService {
        app: c.app,
        conn: c.conn.clone(),
        peer: c.peer,
        body_timeout: c.limits.body(),
    };
    let serving = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(serving);
    let mut draining = *c.stopping.borrow();
    if draining {
        serving.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = c
            .conn
            .deadline(&c.limits)
            .unwrap_or_else(|| Instant::now() + c.limits.header());
        tokio::select! {
            result = serving.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %c.peer, error = %e, "connection ended on an error");
                }
                return;
            }
            () = c.conn.evict.notified() => {
                tracing::debug!(peer = %c.peer, "connection evicted to make room");
                return;
            }
            _ = c.stopping.changed(), if !draining => {
                draining = true;
                serving.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline) => {
                if c.conn.deadline(&c.limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(peer = %c.peer, phase = ?c.conn.get().0, "connection timed out");
                    return;
                }
            }
        }
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.conn.bytes_arrived();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Hands each request of a connection to the router.
#[derive(Clone)]
struct ConnService {
    app: Router,
    conn: Arc<Conn>,
    peer: SocketAddr,
    body_timeout: Duration,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let empty = http_body::Body::is_end_stream(&body);
        self.conn
            .set(if empty { Phase::Working } else { Phase::Body });
        let timed_out = BodyTimedOut::default();
        parts.extensions.insert(ConnectInfo(self.peer));
        parts.extensions.insert(timed_out.clone());
        let body = Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(self.body_timeout)),
            conn: self.conn.clone(),
            timed_out,
        });
        let mut app = self.app.clone();
        let conn = self.conn.clone();
        Box::pin(async move {
            let request = Request::from_parts(parts, body);
            let response =
                match tower_service::Service::<Request<Body>>::call(&mut app, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
            conn.set(Phase::Sending);
            Ok(response.map(|inner| Tracked {
                inner,
                _idle: IdleOnDrop(conn),
            }))
        })
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request.body_timeout: the request body did not arrive in time")]
    Timeout,
    #[error("{0}")]
    Read(#[from] hyper::Error),
}

/// A request body that must arrive in full before its deadline.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    conn: Arc<Conn>,
    timed_out: BodyTimedOut,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let late = |this: &mut DeadlineBody| {
            this.timed_out.0.store(true, Ordering::Relaxed);
            Poll::Ready(Some(Err(BodyError::Timeout)))
        };
        if this.deadline.is_elapsed() {
            return late(this);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.conn.body_done();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.conn.body_done();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return late(this);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Marks its connection idle when hyper is done with the answer.
struct IdleOnDrop(Arc<Conn>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        self.0.set(Phase::Idle);
    }
}

/// An answer body that marks its connection idle once written (or dropped).
pub struct Tracked {
    inner: Body,
    _idle: IdleOnDrop,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &frame {
            // hyper asks for the next frame once the previous one is written: the client is
            // reading, so its `Sending` deadline starts again. A long answer (a CSV export, the
            // warning stream with its keep-alives) lives while the client keeps reading it.
            this._idle.0.set(Phase::Sending);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn the_victim_is_the_longest_waiting_head_or_idle_then_body_never_working() {
        let t = Instant::now();
        let conns = [
            (1, Phase::Working, at(t, 0)),
            (2, Phase::Body, at(t, 2)),
            (3, Phase::Head, at(t, 5)),
            (4, Phase::Idle, at(t, 3)),
            (5, Phase::Sending, at(t, 1)),
        ];
        assert_eq!(pick_victim(conns.iter().copied()), Some(4));
        assert_eq!(pick_victim(conns[..3].iter().copied()), Some(3));
        assert_eq!(
            pick_victim([conns[0], conns[1], conns[4]].into_iter()),
            Some(5)
        );
        assert_eq!(pick_victim(conns[..2].iter().copied()), Some(2));
        assert_eq!(pick_victim(conns[..1].iter().copied()), None);
        assert_eq!(
            pick_victim(std::iter::empty::<(u8, Phase, Instant)>()),
            None
        );
    }

    #[test]
    fn each_phase_has_its_own_deadline_and_working_has_none() {
        let t = Instant::now();
        let limits = TransportOptions {
            max_connections: 4,
            header_timeout: 10,
            body_timeout: 60,
            idle_timeout: 30,
        };
        assert_eq!(deadline_of(Phase::Head, t, &limits), Some(at(t, 10)));
        assert_eq!(
            deadline_of(Phase::Body, t, &limits),
            Some(at(t, 60) + BODY_ANSWER_GRACE)
        );
        assert_eq!(deadline_of(Phase::Idle, t, &limits), Some(at(t, 30)));
        assert_eq!(deadline_of(Phase::Sending, t, &limits), Some(at(t, 60)));
        assert_eq!(deadline_of(Phase::Working, t, &limits), None);
    }

    #[test]
    fn bytes_on_an_idle_connection_start_a_head_and_a_full_body_starts_work() {
        let conn = Conn::new();
        conn.set(Phase::Idle);
        conn.bytes_arrived();
        assert_eq!(conn.get().0, Phase::Head);
        conn.set(Phase::Body);
        conn.bytes_arrived();
        assert_eq!(conn.get().0, Phase::Body);
        conn.body_done();
        assert_eq!(conn.get().0, Phase::Working);
        conn.body_done();
        assert_eq!(conn.get().0, Phase::Working);
    }

    #[test]
    fn eviction_skips_connections_already_asked_to_close() {
        let registry = Arc::new(Registry::default());
        let (a, _ea) = registry.add();
        let (b, _eb) = registry.add();
        a.set(Phase::Working);
        assert!(registry.evict_one());
        assert!(b.evicted.load(Ordering::Relaxed));
        assert!(!registry.evict_one());
        assert!(!a.evicted.load(Ordering::Relaxed));
    }
}
