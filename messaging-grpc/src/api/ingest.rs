//! `MessagingIngest`: the webhook gateway's calls; the interceptor requires the
//! `gateway` role.

use commpro_messaging_api::v1::{self as pb, messaging_ingest_server::MessagingIngest};
use tonic::{Request, Response, Status};

use crate::{
    domain::{StatusOutcome, StatusReport},
    error::Error,
    ingest::{Inbound, InboundSms, Ingest},
    media::Media,
};

pub struct IngestApi {
    ingest: Ingest,
    media: Media,
}

impl IngestApi {
    pub fn new(ingest: Ingest, media: Media) -> Self {
        Self { ingest, media }
    }
}

#[tonic::async_trait]
impl MessagingIngest for IngestApi {
    async fn record_inbound(
        &self,
        req: Request<pb::RecordInboundRequest>,
    ) -> Result<Response<pb::RecordInboundResponse>, Status> {
        let r = req.into_inner();
        let inbound = InboundSms {
            message_sid: r.message_sid,
            account_sid: r.account_sid,
            from: r.from,
            to: r.to,
            body: r.body,
            media: r
                .media
                .into_iter()
                .map(|m| (m.url, m.content_type))
                .collect(),
        };
        let (outcome, message_id) = match self.ingest.record_inbound(inbound).await? {
            Inbound::Stored(m) => (pb::InboundOutcome::Stored, m.row.id),
            Inbound::Duplicate(row) => (pb::InboundOutcome::Duplicate, row.id),
            Inbound::Unroutable => (pb::InboundOutcome::Unroutable, String::new()),
        };
        Ok(Response::new(pb::RecordInboundResponse {
            outcome: outcome as i32,
            message_id,
        }))
    }

    type ServeMediaStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::MediaChunk, Status>>>;

    async fn serve_media(
        &self,
        req: Request<pb::ServeMediaRequest>,
    ) -> Result<Response<Self::ServeMediaStream>, Status> {
        let r = req.into_inner();
        let (row, bytes) = self.media.serve(&r.token, &r.media_id).await?;
        let chunks: Vec<_> = super::convert::media_chunks(&row, bytes)
            .into_iter()
            .map(Ok)
            .collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn record_status(
        &self,
        req: Request<pb::RecordStatusRequest>,
    ) -> Result<Response<pb::RecordStatusResponse>, Status> {
        let r = req.into_inner();
        if r.message_sid.is_empty()
            || r.message_sid.len() > 64
            || !r.message_sid.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::invalid("message_sid", "must be 1-64 letters and digits").into());
        }
        // What Twilio's status words look like: an unknown one is parked, so refuse what
        // Twilio would never send rather than store it.
        if r.status.is_empty()
            || r.status.len() > 32
            || !r
                .status
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err(Error::invalid("status", "must be 1-32 lowercase letters or '_'").into());
        }
        // Twilio's words may name a number; masked before they are parked or stored.
        let error_message = crate::redact::external_text(&r.error_message);
        let report = StatusReport {
            sid: &r.message_sid,
            status: &r.status,
            error_code: (r.error_code != 0).then_some(i64::from(r.error_code)),
            error_message: (!error_message.is_empty()).then_some(error_message.as_str()),
        };
        let ours = (!r.message_id.is_empty()).then_some(r.message_id.as_str());
        let outcome = match self.ingest.record_status_callback(report, ours).await? {
            StatusOutcome::Applied => pb::StatusOutcome::Applied,
            StatusOutcome::Ignored => pb::StatusOutcome::Ignored,
            StatusOutcome::Parked | StatusOutcome::UnknownSid => pb::StatusOutcome::Parked,
            StatusOutcome::UnknownStatus => pb::StatusOutcome::UnknownStatus,
        };
        Ok(Response::new(pb::RecordStatusResponse {
            outcome: outcome as i32,
        }))
    }
}
