use sea_orm::entity::prelude::*;

/// An inbound message for a number nobody owns, kept for operators (no body: there is
/// no user key to encrypt it with; Twilio keeps it under the SID).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "unroutable_inbound")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_sid: String,
    pub account_sid: String,
    pub from_number: String,
    pub to_number: String,
    pub num_media: i32,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
