use sea_orm::entity::prelude::*;

/// A status callback for a SID no message carries yet.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "parked_statuses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_sid: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: String,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
