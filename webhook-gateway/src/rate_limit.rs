//! The per-source rate limit. Each source address ([`client_ip`]) gets
//! GATEWAY_RATE_LIMIT_PER_SEC requests a second, in bursts of twice that, shared by
//! the REST API and the media URLs (a layer in front of each, [`limit`]) and Twilio's
//! webhooks. A webhook is counted only when it does not prove itself Twilio's
//! ([`RateLimit::charge`], called by the signature check): a request with a valid
//! `X-Twilio-Signature` is never refused here, since Twilio does not retry a 429 and
//! the inbound message or status would be lost. The health probes are not limited.

use std::{
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper::StatusCode;
use ipnet::IpNet;

use crate::{
    client_ip::{Peer, client_ip, source_key},
    error::{Face, GatewayError},
    plain,
};

/// How often sources that went quiet are forgotten, in seconds.
const PRUNE_EVERY_SECS: u64 = 60;

/// Request counts per source address.
pub(crate) struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Load balancers whose X-Forwarded-For is believed.
    trusted: Vec<IpNet>,
    started: Instant,
    /// Seconds after `started` of the last pruning.
    pruned_at: AtomicU64,
}

impl RateLimit {
    /// `per_sec` requests a second per source, bursts of twice as many.
    pub(crate) fn new(per_sec: u32, trusted: Vec<IpNet>) -> Self {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = per_sec.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            trusted,
            started: Instant::now(),
            pruned_at: AtomicU64::new(0),
        }
    }

    /// The address `req` is counted against (an IPv6 client by its /64).
    pub(crate) fn source(&self, req: &Request) -> IpAddr {
        let peer = req
            .extensions()
            .get::<Peer>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
        source_key(client_ip(peer, req.headers(), &self.trusted))
    }

    /// Counts one webhook from `source` that did not prove itself Twilio's; over the
    /// limit, the 429 Twilio's face has always answered.
    pub(crate) fn charge(&self, source: IpAddr) -> Result<(), GatewayError> {
        if self.admits(source) {
            return Ok(());
        }
        Err(GatewayError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            TOO_MANY,
        ))
    }

    /// Counts one request from `source`; false once it is over the limit.
    fn admits(&self, source: IpAddr) -> bool {
        self.forget_quiet_sources();
        self.limiter.check_key(&source).is_ok()
    }

    /// Keeps the limiter's memory bounded: once a minute, the request that comes
    /// first drops the sources that have been quiet long enough to be full again.
    fn forget_quiet_sources(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.pruned_at.load(Ordering::Relaxed);
        if now >= last + PRUNE_EVERY_SECS
            && self
                .pruned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
        }
    }
}

/// The line of Twilio's face's 429.
const TOO_MANY: &str = "rate limit exceeded";

/// The layer of the REST API and the media URLs: counts every request against its
/// source; over the limit, the face's 429 instead of the handler.
pub(crate) async fn limit(
    State((limit, face)): State<(Arc<RateLimit>, Face)>,
    req: Request,
    next: Next,
) -> Response {
    if !limit.admits(limit.source(&req)) {
        // Over the budget, a request whose credentials cannot be good still learns that
        // its token is the problem (401), not to retry later (429).
        if matches!(face, Face::Rest)
            && let Err(refusal) = crate::credentials::precheck(&req)
        {
            return refusal.into_response();
        }
        return too_many(face);
    }
    next.run(req).await
}

/// 429 as each face has always said it (the REST API's with `Retry-After`).
fn too_many(face: Face) -> Response {
    match face {
        Face::Twilio => plain::text(StatusCode::TOO_MANY_REQUESTS, TOO_MANY),
        Face::Rest => GatewayError::rate_limited().into_response(),
    }
}
