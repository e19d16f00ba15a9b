//! At most so many connections at once: at the bound, the connection that
//! has been quiet longest is closed to admit the new one.
//!
//! Why ([`photobook::connections`]): without a bound, a flood of
//! connections that send nothing uses up the process's file descriptors,
//! and then every other user's request waits on `accept`. hyper drops a
//! connection whose request head takes more than 30 s, but a flood that
//! opens new ones faster keeps the table full. With the bound, a new
//! connection always gets in; what is closed is what has been quiet
//! longest: idle keep-alive connections first, a flood's silent ones
//! next, a request being served (which has just been read) last.
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
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use axum::serve::Listener;
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
                next_id: AtomicU64::new(0),
                open: Mutex::new(HashMap::new()),
                closed_unreported: AtomicU64::new(0),
                warned_at: AtomicU64::new(0),
            }),
        }
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.table.lock().len()
    }
}

impl<L: Listener> Listener for Bounded<L> {
    type Io = Tracked<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (self.table.admit(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

#[derive(Debug)]
struct Table {
    max: usize,
    start: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Connections closed at the bound since the last warning.
    closed_unreported: AtomicU64,
    /// When the last warning was logged (the table's milliseconds).
    warned_at: AtomicU64,
}

/// At most one warning about the bound in this many milliseconds: a flood
/// of connections must not become a flood of log lines.
const WARN_EVERY_MS: u64 = 10_000;

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
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

    fn admit<I>(self: &Arc<Self>, io: I) -> Tracked<I> {
        let conn = Arc::new(Conn {
            quiet_since: AtomicU64::new(self.now()),
            closed: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut open = self.lock();
        // Only at the bound: a scan of the table, not a cost per request.
        let mut closed = 0_u64;
        while open.len() >= self.max {
            let quietest = open
                .iter()
                .min_by_key(|(_, c)| c.quiet_since.load(Ordering::Relaxed))
                .map(|(id, _)| *id);
            let Some(victim) = quietest.and_then(|id| open.remove(&id)) else {
                break;
            };
            victim.close();
            closed += 1;
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
    /// When it last received bytes (the table's milliseconds): the
    /// clock is read once per read, not per write, as answers follow reads.
    quiet_since: AtomicU64,
    /// Closed to admit a new connection: every read and write fails.
    closed: AtomicBool,
    /// The task waiting on a read, woken when the connection is closed.
    waker: Mutex<Option<Waker>>,
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let waiting = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waiting {
            waker.wake();
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A connection of a [`Bounded`] listener: its IO, counted until dropped.
#[derive(Debug)]
pub struct Tracked<I> {
    io: I,
    conn: Arc<Conn>,
    id: u64,
    table: Arc<Table>,
}

impl<I> Tracked<I> {
    fn active(&self) {
        self.conn
            .quiet_since
            .store(self.table.now(), Ordering::Relaxed);
    }
}

impl<I> Drop for Tracked<I> {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
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
        if this.conn.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => {
                {
                    let mut waker = this
                        .conn
                        .waker
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                }
                // Closed after the first look: the waker may have been taken.
                if this.conn.is_closed() {
                    return Poll::Ready(Err(closed()));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
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
        if this.conn.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.conn.is_closed() {
            return Poll::Ready(Err(closed()));
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
