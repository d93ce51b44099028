#![allow(clippy::unwrap_used)]

//! The dev console (`messaging dev`, `GET /dev`): its API over real HTTP against the
//! real `messaging dev` binary on ephemeral ports, and its page driven in a real
//! headless Chromium through chromedriver (WebDriver, fantoccini). The browser test
//! skips only when Chromium or chromedriver is missing and CI is not set; under CI it
//! fails instead (`.ci/run` installs them).

mod api;
mod browser;
mod flow;
mod png;
mod stack;
