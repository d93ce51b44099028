use sea_orm::entity::prelude::*;

/// A user's data key, wrapped under a master key. `wrapped_dek` is NULL once destroyed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub wrapped_dek: Option<Vec<u8>>,
    pub master_key_id: String,
    pub algorithm: String,
    pub created_at: DateTimeUtc,
    pub destroyed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
