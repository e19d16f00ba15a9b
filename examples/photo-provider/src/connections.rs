//! At most so many connections at once: at the bound, the connection that
//! has been quiet longest is closed to admit the new one.
//!
//! Why ([`photobook::connections`]): without a bound, a flood of
//! connections that send nothing uses up the process's file descriptors,
//! and then every other user's request waits on `accept`. With the bound,
//! a new connection always gets in; what is closed is what has received
//! nothing for longest (up to 32 at once, one scan of the table for
//! them): a flood's silent connections and idle keep-alive ones before a
//! request that has just arrived. A request that trickles in (its first
//! bytes [`UNANSWERED_LIMIT`] ago and still no answer) is cut off when
//! its next bytes come, since axum's `serve` has no timeout on a request
//! head. One network (an IPv4 address or an IPv6 /64,
//! [`tessera::SourceNetwork`]) may hold at most a share of the table
//! ([`Bounded::with_network_max`]; the demo: a quarter): past it, that
//! network's own quietest connections make room, so a flood from one
//! address (or one /64) that keeps its connections busy cannot fill the
//! table and get other hosts' connections closed. What this does not
//! stop: floods from several networks together (four fill the table, and a
//! subscriber with an IPv6 /56 holds 256 of them), or users behind one NAT
//! sharing one share; a proxy in front is the next step.
//!
//! ```no_run
//! use axum::serve::ListenerExt;
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! // `tap_io` gives the listener axum's `ConnectInfo<SocketAddr>`.
//! let listener = photo_provider::connections::Bounded::new(listener, 10_000).tap_io(|_| {});
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
//! # }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::task::AtomicWaker;

use axum::serve::Listener;
use tessera::SourceNetwork;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A listener that holds at most `max` connections (see the module docs).
#[derive(Debug)]
pub struct Bounded<L> {
    inner: L,
    table: Arc<Table>,
}

impl<L: Listener> Bounded<L> {
    /// At most `max` (at least one) of `inner`'s connections open at once.
    pub fn new(inner: L, max: usize) -> Self {
        Self {
            inner,
            table: Arc::new(Table {
                max: max.max(1),
                start: Instant::now(),
                network_max: usize::MAX,
                next_id: AtomicU64::new(0),
                open: Mutex::new(Open::default()),
                closed_unreported: AtomicU64::new(0),
                warned_at: AtomicU64::new(0),
                unanswered_limit_ms: millis(UNANSWERED_LIMIT),
            }),
        }
    }

    /// How long a request may take to arrive and be answered once its
    /// first bytes came ([`UNANSWERED_LIMIT`] unless set here).
    pub fn with_unanswered_limit(mut self, limit: std::time::Duration) -> Self {
        if let Some(table) = Arc::get_mut(&mut self.table) {
            table.unanswered_limit_ms = millis(limit);
        }
        self
    }

    /// At most `max` (at least one) connections from one network (see
    /// the module docs); unbounded unless set here.
    pub fn with_network_max(mut self, max: usize) -> Self {
        if let Some(table) = Arc::get_mut(&mut self.table) {
            table.network_max = max.max(1);
        }
        self
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.table.lock().conns.len()
    }
}

impl<L: Listener<Addr = SocketAddr>> Listener for Bounded<L> {
    type Io = Tracked<L::Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (self.table.admit(io, SourceNetwork::of(addr.ip())), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[derive(Debug)]
struct Table {
    max: usize,
    /// [`Bounded::with_network_max`].
    network_max: usize,
    start: Instant,
    next_id: AtomicU64,
    open: Mutex<Open>,
    /// Connections closed at the bound since the last warning.
    closed_unreported: AtomicU64,
    /// When the last warning was logged (the table's milliseconds).
    warned_at: AtomicU64,
    /// [`Bounded::with_unanswered_limit`], in milliseconds.
    unanswered_limit_ms: u64,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// At most one warning about the bound in this many milliseconds: a flood
/// of connections must not become a flood of log lines.
const WARN_EVERY_MS: u64 = 10_000;

/// The open connections, and how many each network holds.
#[derive(Debug, Default)]
struct Open {
    conns: HashMap<u64, Arc<Conn>>,
    per_network: HashMap<SourceNetwork, usize>,
}

impl Open {
    fn insert(&mut self, id: u64, conn: Arc<Conn>) {
        *self.per_network.entry(conn.network).or_default() += 1;
        self.conns.insert(id, conn);
    }

    /// Removes `id` (closed here, or dropped), counting it off its network.
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_network.get_mut(&conn.network) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_network.remove(&conn.network);
            }
        }
        Some(conn)
    }

    /// Closes the `n` connections quiet longest among those `which` picks
    /// (one scan): how many were closed.
    fn close_quietest(&mut self, n: usize, which: impl Fn(&Conn) -> bool) -> u64 {
        let mut by_quiet: Vec<(u64, u64)> = self
            .conns
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(id, c)| (c.quiet_since.load(Ordering::Relaxed), *id))
            .collect();
        let n = n.min(by_quiet.len());
        if n == 0 {
            return 0;
        }
        by_quiet.select_nth_unstable(n - 1);
        let mut closed = 0;
        for (_, id) in &by_quiet[..n] {
            if let Some(victim) = self.remove(*id) {
                victim.close();
                closed += 1;
            }
        }
        closed
    }
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note_closed(&self, n: u64) {
        let closed = self.closed_unreported.fetch_add(n, Ordering::Relaxed) + n;
        let now = self.now();
        let last = self.warned_at.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY_MS)
            && self
                .warned_at
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.closed_unreported.fetch_sub(closed, Ordering::Relaxed);
            tracing::warn!(
                max = self.max,
                closed,
                "connections at the bound: the quietest were closed to admit new ones"
            );
        }
    }

    /// Milliseconds since the table was made: a connection's clock.
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn admit<I>(self: &Arc<Self>, io: I, network: SourceNetwork) -> Tracked<I> {
        let conn = Arc::new(Conn {
            network,
            quiet_since: AtomicU64::new(self.now()),
            unanswered_since: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut open = self.lock();
        // Only at a bound, a scan of the table: it closes the quietest
        // 64th of what is bounded (at most 32) at once, so that a flood of
        // new connections pays one scan per batch, not one per connection.
        // At most 32 at once: their descriptors are freed as their tasks
        // end, and the reserve below the limit is 128. Room for this one at
        // least (a bound is never exceeded).
        let mut closed = 0_u64;
        let held = open.per_network.get(&network).copied().unwrap_or(0);
        if held >= self.network_max {
            let room = (self.network_max / 64).clamp(1, 32);
            let excess = held + 1 - self.network_max;
            closed += open.close_quietest(room.max(excess), |c| c.network == network);
        }
        if open.conns.len() >= self.max {
            let room = (self.max / 64).clamp(1, 32);
            let excess = open.conns.len() + 1 - self.max;
            closed += open.close_quietest(room.max(excess), |_| true);
        }
        open.insert(id, Arc::clone(&conn));
        drop(open);
        if closed > 0 {
            self.note_closed(closed);
        }
        Tracked {
            io,
            conn,
            id,
            table: Arc::clone(self),
        }
    }
}

#[derive(Debug)]
struct Conn {
    /// The network it came from.
    network: SourceNetwork,
    /// When it last received bytes (the table's milliseconds): the
    /// clock is read once per read, not per write, as answers follow reads.
    quiet_since: AtomicU64,
    /// When bytes arrived that have had no answer since (the table's
    /// milliseconds, plus one; zero: none waiting).
    unanswered_since: AtomicU64,
    /// Closed to admit a new connection: every read and write fails.
    closed: AtomicBool,
    /// The task driving the connection, woken when it is closed: saved on
    /// every poll, so a task waiting on a write (a client that stopped
    /// reading) is woken too, and gives its descriptor back.
    waker: AtomicWaker,
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// How long a request may take to arrive and be answered, once its first
/// bytes came: a head or body trickled a byte at a time is cut off here
/// (axum's `serve` sets no timeout on a request head). Checked when bytes
/// arrive, so a handler at work is never cut off by it.
pub const UNANSWERED_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection of a [`Bounded`] listener: its IO, counted until dropped.
#[derive(Debug)]
pub struct Tracked<I> {
    io: I,
    conn: Arc<Conn>,
    id: u64,
    table: Arc<Table>,
}

impl<I> Tracked<I> {
    /// Before every poll: fails once the connection was closed, and saves
    /// the waker (checked again after, as `close` may have run between).
    fn enter(&self, cx: &Context<'_>) -> io::Result<()> {
        if self.conn.is_closed() {
            return Err(closed());
        }
        self.conn.waker.register(cx.waker());
        if self.conn.is_closed() {
            return Err(closed());
        }
        Ok(())
    }

    /// Bytes arrived: the connection is active, and a request that has
    /// waited for its answer too long (still arriving) is cut off.
    fn received(&self) -> io::Result<()> {
        let now = self.table.now();
        self.conn.quiet_since.store(now, Ordering::Relaxed);
        let since = self.conn.unanswered_since.load(Ordering::Relaxed);
        if since == 0 {
            self.conn
                .unanswered_since
                .store(now.saturating_add(1), Ordering::Relaxed);
            return Ok(());
        }
        if now.saturating_add(1).saturating_sub(since) > self.table.unanswered_limit_ms {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "a request took too long to arrive",
            ));
        }
        Ok(())
    }

    /// Bytes went out: whatever had arrived has its answer.
    fn answered(&self) {
        self.conn.unanswered_since.store(0, Ordering::Relaxed);
    }
}

impl<I> Drop for Tracked<I> {
    fn drop(&mut self) {
        self.table.lock().remove(self.id);
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to admit a new connection",
    )
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.enter(cx)?;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => Poll::Ready(this.received()),
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.enter(cx)?;
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.answered();
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.enter(cx)?;
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.answered();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.enter(cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
