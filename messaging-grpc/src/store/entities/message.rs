use sea_orm::entity::prelude::*;

/// One SMS/MMS. The body is only ever stored sealed (`body_ct`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub contact_id: String,
    pub direction: String,
    pub owner_e164: String,
    /// The contact's number in clear, from before numbers were sealed: empty once
    /// sealed into `contact_number_ct`.
    #[sea_orm(column_name = "contact_e164")]
    pub legacy_contact_e164: String,
    pub body_ct: Vec<u8>,
    pub key_version: i32,
    pub status: String,
    pub provider_sid: Option<String>,
    pub idempotency_key: Option<String>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub segments: i32,
    pub num_media: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    pub read_at: Option<DateTimeUtc>,
    /// A scheduled message's due time (its validity window starts then).
    pub send_at: Option<DateTimeUtc>,
    /// Received from a blocked number: kept, but out of conversations and unread counts.
    pub blocked: bool,
    /// In the search index (false only for rows older than the index, until backfilled).
    pub search_indexed: bool,
    /// The contact's number, sealed (`domain::aad::message_contact_number`); NULL only
    /// on a row not sealed yet, empty when erased for an already shredded user.
    pub contact_number_ct: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
