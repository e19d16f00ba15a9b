//! Stopping on Ctrl-C or SIGTERM: graceful, then bounded.
//!
//! `axum::serve`'s graceful shutdown waits for every open connection to
//! finish, with no deadline: one client holding a half-sent request head
//! (which no timeout of ours sees until its next bytes come) kept the
//! process running until that client went away. Open connections now get
//! [`SHUTDOWN_GRACE`] to finish their requests; then [`serve_until`]
//! returns, and the binary drops its runtime, which closes them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How long open connections get to finish once the server is told to
/// stop; what is still open then is not waited for (the binary's runtime
/// closes it as it ends).
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
/// photo_provider::shutdown::serve_until(
///     |stop| axum::serve(listener, app).with_graceful_shutdown(stop).into_future(),
///     async { let _ = tokio::signal::ctrl_c().await; },
///     photo_provider::shutdown::SHUTDOWN_GRACE,
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
        // A dropped sender (the function returned) stops it too.
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
