//! Fills a store with a data set of a chosen size through the core's own write paths
//! (`Messaging::send_sms` and `Ingest::record_inbound`, in-process, dispatcher off):
//! bodies are encrypted under per-user keys, contacts, conversations, unread counts,
//! events and the search index are written as real traffic writes them.
//!
//! cargo run --release -p messaging-grpc --example dataset -- --messages 1000000 --database-url URL
//!
//! Shape for N messages: N/100 users, N/5 contacts, 80% outbound and 20% inbound.
//! The first 8 users are the "readers" `loadgen --read-only` pages through: 60
//! conversations each, one of them with 100 messages. Writers run concurrently (one
//! user each at a time) so a group-committing store can batch them. Then:
//! `loadgen --read-only --database-url URL`.

#[path = "common/bench_env.rs"]
mod bench_env;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bench_env::{BIG_CONVERSATION, READER_CONTACTS, READER_MESSAGES, READERS};
use clap::Parser;
use messaging_grpc::{App, Config, Mode, ingest::InboundSms, messaging::SendSms};

#[derive(Parser)]
#[command(about = "Fills a store with an encrypted data set for the read benchmarks")]
struct Args {
    /// Messages to write in all.
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// The store: `sqlite://path?mode=rwc` or an existing, empty `postgres://…` database.
    #[arg(long)]
    database_url: String,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Local state of the core (media folder); default: next to nothing, a temporary one.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

/// What one user gets.
struct UserPlan {
    user: String,
    number: String,
    /// Contact numbers; message `j` goes to or comes from `plan[j]`.
    contacts: Vec<String>,
    plan: Vec<usize>,
}

/// The readers first (fixed shape), then the other users sharing what is left evenly.
fn plan(total: usize) -> anyhow::Result<Vec<UserPlan>> {
    let readers_total = READERS * READER_MESSAGES;
    if total < readers_total + 100 {
        bail!(
            "--messages must be at least {}: the readers alone hold {readers_total}",
            readers_total + 100
        );
    }
    let mut users = Vec::new();
    for r in 0..READERS {
        let contacts = (0..READER_CONTACTS)
            .map(|c| bench_env::reader_contact(r, c))
            .collect();
        // The big conversation's messages spread between the others' (as they arrive).
        let mut plan: Vec<usize> = (1..READER_CONTACTS).collect();
        for i in 0..BIG_CONVERSATION {
            plan.insert(i * plan.len() / BIG_CONVERSATION.max(1), 0);
        }
        users.push(UserPlan {
            user: bench_env::reader_user(r),
            number: bench_env::reader_number(r),
            contacts,
            plan,
        });
    }
    let n_users = (total / 100).max(READERS + 1) - READERS;
    let rest = total - readers_total;
    let contacts_total = (total / 5).saturating_sub(READERS * READER_CONTACTS);
    let per_user = (contacts_total / n_users).clamp(1, 999);
    for u in 0..n_users {
        let messages = rest / n_users + usize::from(u < rest % n_users);
        let k = per_user.min(messages.max(1));
        users.push(UserPlan {
            user: format!("bench-user-{u}"),
            number: format!("+1501{u:07}"),
            contacts: (0..k)
                .map(|c| format!("+1{}", 5_020_000_000u64 + (u * 1000 + c) as u64))
                .collect(),
            plan: (0..messages).map(|j| j % k).collect(),
        });
    }
    Ok(users)
}

const BODIES: [&str; 6] = [
    "Your appointment is confirmed for Tuesday at 3pm. Reply STOP to opt out.",
    "Running 10 minutes late, sorry!",
    "Can you send me the invoice for last month when you get a chance?",
    "Thanks, see you tomorrow",
    "Your verification code is 482913. It expires in 10 minutes.",
    "The package was delivered to the front desk at 14:05. Have a nice day and let us know if anything is missing.",
];

async fn write_user(
    app: &App,
    u: &UserPlan,
    run: u32,
    written: &AtomicUsize,
) -> anyhow::Result<()> {
    app.admin
        .assign_number("dataset", &u.number, &u.user)
        .await
        .with_context(|| format!("assigning {}", u.number))?;
    for (j, &c) in u.plan.iter().enumerate() {
        let body = format!("{} ({j})", BODIES[j % BODIES.len()]);
        if j % 5 == 4 {
            let sid = format!("SM{run:08x}{:016x}{j:08x}", hash(&u.user));
            app.ingest
                .record_inbound(InboundSms {
                    message_sid: sid,
                    account_sid: bench_env::ACCOUNT_SID.into(),
                    from: u.contacts[c].clone(),
                    to: u.number.clone(),
                    body,
                    media: Vec::new(),
                })
                .await
                .with_context(|| format!("inbound message {j} of {}", u.user))?;
        } else {
            let send = SendSms {
                from: u.number.clone(),
                to: u.contacts[c].clone(),
                body,
                idempotency_key: String::new(),
                send_at: None,
            };
            app.messaging
                .send_sms(&u.user, send)
                .await
                .with_context(|| format!("message {j} of {}", u.user))?;
        }
        written.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// A stable 64-bit hash of a user id (MessageSids must be unique per message).
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let users = Arc::new(plan(args.messages)?);
    let tmp = tempfile::tempdir()?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let vars: HashMap<String, String> =
        bench_env::core_vars(&args.database_url, &data_dir.display().to_string())
            .into_iter()
            .collect();
    let config = Config::from_vars(&vars, Mode::Serve)?;
    let app = Arc::new(App::build(&config).await?);
    let contacts: usize = users.iter().map(|u| u.contacts.len()).sum();
    eprintln!(
        "dataset: {} messages, {} users, {contacts} contacts, {} writers",
        args.messages,
        users.len(),
        args.writers
    );
    // Keeps MessageSids apart if the same database is filled twice.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u32)
        .unwrap_or(0);
    let written = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.writers.max(1) {
        let (app, users, written, next) =
            (app.clone(), users.clone(), written.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(u) = users.get(i) else {
                    return anyhow::Ok(());
                };
                write_user(&app, u, run, &written).await?;
            }
        }));
    }
    let progress = {
        let written = written.clone();
        let total = args.messages;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = written.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                let rate = n as f64 / secs;
                eprintln!(
                    "dataset: {n} / {total} messages, {rate:.0}/s, {:.0} s left",
                    (total - n.min(total)) as f64 / rate.max(1.0)
                );
            }
        })
    };
    let mut result: anyhow::Result<()> = Ok(());
    for t in tasks {
        let r = t.await.context("a writer task")?;
        if result.is_ok() {
            result = r;
        }
    }
    progress.abort();
    result?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "dataset: wrote {} messages ({} users, {contacts} contacts) in {secs:.1} s, {:.0} messages/s",
        written.load(Ordering::Relaxed),
        users.len(),
        written.load(Ordering::Relaxed) as f64 / secs
    );
    Ok(())
}
