use sea_orm::entity::prelude::*;

/// The other party of a user's conversations; created on the first message either way.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub e164: String,
    pub opted_out: bool,
    pub created_at: DateTimeUtc,
    /// The name the user gave the contact, sealed like a body.
    pub name_ct: Option<Vec<u8>>,
    /// Set while the user blocks this number.
    pub blocked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
