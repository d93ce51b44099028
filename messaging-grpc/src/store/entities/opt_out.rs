use sea_orm::entity::prelude::*;

/// A contact who replied STOP to one of the user's numbers (or whom Twilio reported
/// unsubscribed from it): nothing more goes to them from that number.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opt_outs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_e164: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
