//! The one shape of a gRPC handler: who the caller is, the service's request built
//! from the message, the call, and the answer converted to its proto message. The
//! handlers keep only what differs (which fields, which service method, which
//! conversion, in a closure); the functions here are the rest, so every handler takes
//! its caller and answers an error the same way.
//!
//! Errors are mapped in one place: the closure answers the crate's [`Error`], and its
//! `?` here turns it into a `Status` by `From<Error> for Status` (src/error.rs). A
//! request without an authenticated caller (the interceptor, src/auth, puts one on
//! every request it lets through) is UNAUTHENTICATED.
//!
//! The long-lived and client-streaming calls (WatchEvents, UploadMedia) hold slots or
//! read a stream as they go, and are written out in full; calls that do not name
//! their caller (MessagingIngest, the admin's listings) have no shape to share.

use std::future::Future;

use tonic::{Request, Response, Status};

use crate::{
    auth::{Caller, caller},
    error::Error,
};

/// A call made as its caller: `handle` gets the authenticated caller and the request's
/// message, and answers the reply (or an error, mapped to its status here).
pub(super) async fn as_caller<T, A, F>(
    req: Request<T>,
    handle: impl FnOnce(Caller, T) -> F,
) -> Result<Response<A>, Status>
where
    F: Future<Output = Result<A, Error>>,
{
    let user = caller(&req)?;
    Ok(Response::new(handle(user, req.into_inner()).await?))
}
