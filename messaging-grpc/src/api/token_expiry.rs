//! Long-lived calls end when the caller's token does: a WatchEvents stream opened with
//! a token checks it once, so without this a stolen or revoked-by-expiry token would
//! keep receiving events forever. The client reconnects with a fresh token and resumes
//! from its last cursor, missing nothing.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::time::Sleep;
use tokio_stream::Stream;
use tonic::Status;

/// What the stream's last item says.
const EXPIRED: &str =
    "token expired: reconnect with a fresh token and resume from your last cursor";

/// `inner` until `expires_at` (Unix seconds), then one UNAUTHENTICATED error and the end.
pub fn until_expiry<S>(inner: S, expires_at: u64) -> UntilExpiry<S> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(expires_at).saturating_sub(now);
    UntilExpiry {
        inner,
        deadline: Box::pin(tokio::time::sleep(left)),
        done: false,
    }
}

pub struct UntilExpiry<S> {
    inner: S,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl<S, T> Stream for UntilExpiry<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(Status::unauthenticated(EXPIRED))));
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.done = true;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn ends_with_unauthenticated_at_expiry() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // A stream that never ends by itself.
        let forever = tokio_stream::pending::<Result<u32, Status>>();
        let mut s = until_expiry(forever, now);
        let last = s.next().await.expect("an item at expiry").unwrap_err();
        assert_eq!(last.code(), tonic::Code::Unauthenticated);
        assert!(s.next().await.is_none(), "and then the end");
    }

    #[tokio::test]
    async fn a_stream_that_ends_first_ends_without_an_error() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let items: Vec<Result<u32, Status>> =
            until_expiry(tokio_stream::iter([Ok(1), Ok(2)]), now + 60)
                .collect()
                .await;
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));
    }
}
