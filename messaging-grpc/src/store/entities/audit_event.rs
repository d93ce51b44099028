use sea_orm::entity::prelude::*;

/// One operator action: who, what, when, on whom. Never content.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub at: DateTimeUtc,
    pub actor: String,
    pub action: String,
    pub target_user_id: Option<String>,
    pub target: Option<String>,
    /// Counts and ids as JSON.
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
