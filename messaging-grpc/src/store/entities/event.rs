use sea_orm::entity::prelude::*;

/// One change a user's WatchEvents streams report. Ids and metadata only, never content.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub cursor: i64,
    pub kind: String,
    pub message_id: Option<String>,
    pub contact_id: Option<String>,
    pub status: Option<String>,
    pub unread_count: Option<i64>,
    pub created_at: DateTimeUtc,
    /// The conversation was muted when the event was recorded.
    pub muted: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
