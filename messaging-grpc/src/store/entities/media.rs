use sea_orm::entity::prelude::*;

/// A media item (MMS image). The bytes live encrypted in the media store under
/// `storage_key`; an inbound item is `pending` until downloaded from Twilio.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub direction: String,
    pub status: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub storage_key: Option<String>,
    /// Inbound: the provider's media URL, sealed.
    pub source_url_ct: Option<Vec<u8>>,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
