use sea_orm::entity::prelude::*;

/// A send job for the dispatcher, written with its message.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: String,
    pub user_id: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub claimed_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    /// Who holds the lease: outcome writes are conditional on it.
    pub claim_token: Option<String>,
    /// When the last create at the provider was started (an unknown outcome is
    /// looked up only once Twilio had time to finish it and list it).
    pub create_started_at: Option<DateTimeUtc>,
    /// Look-ups since that create that found nothing.
    pub empty_lookups: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
