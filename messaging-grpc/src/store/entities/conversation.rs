use sea_orm::entity::prelude::*;

/// Per (user, contact) summary, kept in the same transaction as every message write.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: String,
    pub owner_e164: String,
    pub last_message_id: String,
    pub last_message_at: DateTimeUtc,
    pub unread_count: i64,
    pub updated_at: DateTimeUtc,
    pub archived: bool,
    pub muted: bool,
    /// End of the mute; NULL while muted is "until unmuted".
    pub muted_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
