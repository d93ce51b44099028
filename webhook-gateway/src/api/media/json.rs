//! The JSON shape of `media.rs`: an uploaded or received image.

use commpro_messaging_api::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::GatewayError;

/// `pending`: an inbound image still being copied from Twilio; `failed`: it could not be;
/// `destroyed`: the owner's keys were shredded and the image deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    Ready,
    Pending,
    Failed,
    Destroyed,
}

/// An image, stored encrypted; its bytes are at `url`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Media {
    pub id: String,
    /// The type sniffed from the bytes.
    #[schema(example = "image/png")]
    pub content_type: String,
    pub size_bytes: u64,
    pub state: MediaState,
    /// `GET` it with the same bearer token.
    #[schema(example = "/api/media/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11")]
    pub url: String,
}

pub fn media_url(id: &str) -> String {
    format!("/api/media/{id}")
}

impl TryFrom<pb::Media> for Media {
    type Error = GatewayError;
    fn try_from(m: pb::Media) -> Result<Self, GatewayError> {
        let state = match pb::MediaState::try_from(m.state) {
            Ok(pb::MediaState::Ready) => MediaState::Ready,
            Ok(pb::MediaState::Pending) => MediaState::Pending,
            Ok(pb::MediaState::Failed) => MediaState::Failed,
            Ok(pb::MediaState::Destroyed) => MediaState::Destroyed,
            _ => return Err(GatewayError::bad_core_answer("media state")),
        };
        Ok(Self {
            url: media_url(&m.id),
            id: m.id,
            content_type: m.content_type,
            size_bytes: m.size_bytes,
            state,
        })
    }
}
