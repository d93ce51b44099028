//! SMS rules that do not depend on a provider.

mod keywords;
mod segments;

pub use keywords::{Keyword, keyword};
pub use segments::{Encoding, SegmentCount, count_segments};

/// Longest body accepted, in characters (Twilio's limit for a message).
pub const MAX_BODY_CHARS: usize = 1600;
