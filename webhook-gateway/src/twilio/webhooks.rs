//! `POST /webhook/sms` and `POST /webhook/status`: a verified form of our own Twilio
//! account becomes a `MessagingIngest` call; success is empty TwiML, which tells
//! Twilio to do nothing more.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    response::Response,
};
use commpro_messaging_api::v1 as pb;
use hyper::{
    StatusCode,
    header::{self, HeaderValue},
};

use super::{
    Twilio, core_failed,
    form::{InboundWebhook, StatusWebhook},
    verify::{self, Verified},
};
use crate::{error::GatewayError, plain};

const TWIML_OK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// An inbound SMS or MMS.
pub(crate) async fn sms(State(twilio): State<Arc<Twilio>>, req: Request) -> Response {
    answer(inbound(&twilio, req).await)
}

/// A status callback of a message we sent.
pub(crate) async fn status(State(twilio): State<Arc<Twilio>>, req: Request) -> Response {
    answer(status_callback(&twilio, req).await)
}

async fn inbound(twilio: &Twilio, req: Request) -> Result<(), GatewayError> {
    let Verified { form, trace } = verify::verified(req, twilio).await?;
    let hook = InboundWebhook::parse(&form)?;
    own_account(twilio, &hook.account_sid)?;
    let sid = hook.message_sid.clone();
    let resp = twilio
        .core
        .record_inbound(hook.into(), &trace)
        .await
        .map_err(|e| core_failed(&sid, e))?;
    let outcome =
        pb::InboundOutcome::try_from(resp.outcome).unwrap_or(pb::InboundOutcome::Unspecified);
    tracing::info!(%sid, outcome = outcome.as_str_name(), trace_id = %trace.trace_id, "inbound webhook");
    Ok(())
}

async fn status_callback(twilio: &Twilio, req: Request) -> Result<(), GatewayError> {
    let query = req.uri().query().map(str::to_owned);
    let Verified { form, trace } = verify::verified(req, twilio).await?;
    let hook = StatusWebhook::parse(&form)?.with_message_id(query.as_deref());
    own_account(twilio, &hook.account_sid)?;
    let sid = hook.message_sid.clone();
    let resp = twilio
        .core
        .record_status(hook.into(), &trace)
        .await
        .map_err(|e| core_failed(&sid, e))?;
    let outcome =
        pb::StatusOutcome::try_from(resp.outcome).unwrap_or(pb::StatusOutcome::Unspecified);
    tracing::info!(%sid, outcome = outcome.as_str_name(), trace_id = %trace.trace_id, "status webhook");
    Ok(())
}

/// A webhook signed with our auth token but for another account is still not ours.
fn own_account(twilio: &Twilio, account_sid: &str) -> Result<(), GatewayError> {
    if account_sid == twilio.config.account_sid {
        return Ok(());
    }
    tracing::warn!("signed webhook for another Twilio account refused");
    Err(GatewayError::refused(
        StatusCode::FORBIDDEN,
        "permission_denied",
        "unknown account",
    ))
}

fn answer(result: Result<(), GatewayError>) -> Response {
    match result {
        Ok(()) => {
            let mut resp = Response::new(Body::from(TWIML_OK));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
            resp
        }
        Err(e) => plain::refusal(e),
    }
}
