//! Where blocking store work runs: tokio's blocking pool, never an executor thread.

use crate::error::{internal, Result};

/// Runs blocking store work on the blocking pool, never on an executor thread.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> std::result::Result<T, store::StoreError> + Send + 'static,
    T: Send + 'static,
{
    Ok(in_pool(f).await??)
}

/// Runs `f` on the blocking pool inside the caller's tracing span, so what it logs carries the
/// request's id.
pub(crate) async fn in_pool<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(internal)
}
