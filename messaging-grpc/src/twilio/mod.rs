//! Our own small client for Twilio's REST API (2010-04-01 Messages), on reqwest with
//! rustls. Wire format as in Twilio's OpenAPI description (`shared/twilio/`).

mod client;
mod error;
mod resource;

pub use client::{CreateMessage, TwilioAuth, TwilioClient};
pub use error::TwilioError;
pub use resource::{ApiErrorBody, MessageList, MessageResource};
