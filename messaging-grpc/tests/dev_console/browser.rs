//! Headless Chromium through chromedriver on an ephemeral port, driven over WebDriver
//! (fantoccini), with a fresh profile; and the few page helpers the flow uses.

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::stack::free_ports;

/// Chromium's flags: headless, no sandbox (root in CI), nothing fetched from the
/// network behind the test's back.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,960",
];

/// A browser session; chromedriver and every Chromium process it started stop when
/// dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium's processes are chromedriver's children: killing chromedriver alone
        // left them running after the test (three browsers' worth, ~4 % of a core, by
        // the end of a suite). chromedriver leads its own process group (see `start`),
        // so the whole group goes.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

impl Browser {
    /// A session, or `None` when Chromium or chromedriver is missing outside CI (the
    /// test then skips); under `CI` a missing browser fails the test.
    pub async fn start() -> Option<Self> {
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = on_path(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipped: chromium and chromedriver are not installed");
            return None;
        };
        let [port] = free_ports();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, with the Chromium it starts: killed together.
            .process_group(0)
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Self {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no chromedriver session: {last_error}");
    }

    /// Evaluates `expr` in the page.
    pub async fn js(&self, expr: &str) -> Value {
        self.client
            .execute(&format!("return ({expr});"), Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// Waits (at most 20 s) until `expr` is truthy in the page; on timeout, fails
    /// with what the page's alert lines say.
    pub async fn until(&self, what: &str, expr: &str) {
        for _ in 0..200 {
            let v = self.js(expr).await;
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let alerts = self
            .js("[...document.querySelectorAll('[role=alert]')].map(e => e.textContent).join(' | ')")
            .await;
        panic!("timed out waiting for {what} ({expr}); alerts: {alerts}");
    }

    /// Replaces the value of the input `#id`.
    pub async fn fill(&self, id: &str, text: &str) {
        let input = self.client.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Picks `file` in the file input `#id`.
    pub async fn pick_file(&self, id: &str, file: &Path) {
        let input = self.client.find(Locator::Id(id)).await.unwrap();
        input.send_keys(&file.display().to_string()).await.unwrap();
    }

    /// Clicks the element `css` once it is on the page (lists re-render as events
    /// come, so an element found a moment ago may be replaced: then it is found again).
    pub async fn click(&self, css: &str) {
        let mut last_error = String::new();
        for _ in 0..50 {
            self.until(
                &format!("{css} to be on the page"),
                &format!("!!document.querySelector({css:?})"),
            )
            .await;
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.click().await,
                Err(e) => Err(e),
            };
            match clicked {
                Ok(()) => return,
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("click {css}: {last_error}");
    }

    /// Picks the option of value `value` in the select `#id`.
    pub async fn select(&self, id: &str, value: &str) {
        let select = self.client.find(Locator::Id(id)).await.unwrap();
        select.select_by_value(value).await.unwrap();
    }
}
