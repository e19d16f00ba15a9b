//! Stopping on Ctrl-C or SIGTERM: graceful, then bounded.
//!
//! `axum::serve`'s graceful shutdown waits for every open connection to
//! finish, with no deadline: one client holding a half-sent request head
//! (which no timeout sees until its next bytes come) kept a demo server
//! running until that client went away. [`serve_until`] gives open
//! connections [`SHUTDOWN_GRACE`], then returns; the binary then drops its
//! runtime, which closes them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long open connections get to finish once a server is told to stop;
/// what is still open then is not waited for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The future a server stops gracefully on, handed to `serve`.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the server `serve` makes (given the future that tells it to stop
/// gracefully, for `axum::serve(..).with_graceful_shutdown`) until
/// `signal`, then waits at most `grace` for it to finish: `Ok` too when
/// connections were still open (their tasks run on until the runtime that
/// spawned them ends: the caller's to drop).
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// use std::future::IntoFuture;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let app = axum::Router::new();
/// demo_cli::shutdown::serve_until(
///     |stop| axum::serve(listener, app).with_graceful_shutdown(stop).into_future(),
///     demo_cli::shutdown::signal(),
///     demo_cli::shutdown::SHUTDOWN_GRACE,
/// )
/// .await
/// # }
/// ```
pub async fn serve_until<S, E>(
    serve: impl FnOnce(StopSignal) -> S,
    signal: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), E>
where
    S: Future<Output = Result<(), E>>,
{
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let serving = serve(Box::pin(async move {
        // A dropped sender (this function returned) stops it too.
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    let mut serving = std::pin::pin!(serving);
    tokio::select! {
        result = &mut serving => return result,
        () = signal => {}
    }
    let _ = stop.send(true);
    match tokio::time::timeout(grace, serving).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "connections still open after the shutdown grace period: no longer waited for"
            );
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM, listened for from the moment this is called (within
/// a Tokio runtime): a signal that comes before the returned future is
/// first polled (while the start-up line is printed, say) is not lost, nor
/// does it end the process the default way, skipping the shutdown.
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = interrupt => {},
            }
            tracing::info!("shutting down");
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down");
    }
}
