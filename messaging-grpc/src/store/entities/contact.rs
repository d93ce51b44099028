use sea_orm::entity::prelude::*;

/// The other party of a user's conversations; created on the first message either way.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// The number in clear, from before numbers were sealed: empty once the start-up
    /// step sealed the row (and for every row written since).
    #[sea_orm(column_name = "e164")]
    pub legacy_e164: String,
    pub opted_out: bool,
    pub created_at: DateTimeUtc,
    /// The name the user gave the contact, sealed like a body.
    pub name_ct: Option<Vec<u8>>,
    /// Set while the user blocks this number.
    pub blocked_at: Option<DateTimeUtc>,
    /// The number, sealed (`domain::aad::contact_number`); NULL only on a row not
    /// sealed yet, empty when it was erased because its user was already shredded.
    pub number_ct: Option<Vec<u8>>,
    /// Keyed blind index of the number (`crypto::NumberKey`): what lookups by number
    /// match; unique per user.
    pub number_index: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
