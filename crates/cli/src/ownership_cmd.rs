//! `chime-sync adopt` and `chime-sync held`: the ownership ledger's two
//! operator commands.
//!
//! - `adopt` makes a source the owner of the Chime users that predate
//!   ownership (no owner recorded) and that the source lists, so its absence
//!   can delete them from then on. A dry run by default: it prints who would
//!   be adopted; `--apply` records them.
//! - `held list` shows the explicit deletions a feed breaker held back;
//!   `held release --count N` publishes them again to the sync queue,
//!   marked released, where idp-sync applies exactly those (N must be the
//!   number listed, as `--allow-deletes` must cover a reconcile's plan).

use std::collections::BTreeMap;

use chime_sync_aws::{ConfiguredLedger, SqsQueue};
use chime_sync_core::UserId;
use chime_sync_core::ledger::{self, At, Ledger, Marked, UserRecord};
use chime_sync_core::queue::{OutgoingMessage, Queue};
use chime_sync_core::schema::{IdentityEvent, Origin, event_message};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::inputs::{LedgerArgs, Output, TargetArgs, list_chime_users, open_ledger};
use crate::out::outln;
use crate::settings::{self, Flags};
use crate::{Failure, Status, chime_directory, sdk_config};

#[derive(Args, Debug)]
pub struct AdoptArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Record the adoption (default: only print who would be adopted).
    #[arg(long)]
    apply: bool,
}

#[derive(Args, Debug)]
pub struct HeldArgs {
    #[command(subcommand)]
    action: HeldAction,
}

#[derive(Subcommand, Debug)]
enum HeldAction {
    /// List the deletions a feed breaker held back.
    List {
        #[command(flatten)]
        ledger: HeldLedger,
    },
    /// Publish the held deletions again, released past the breaker.
    Release {
        #[command(flatten)]
        ledger: HeldLedger,
        /// The sync queue (the stack's SyncQueueUrl output) idp-sync reads.
        #[arg(long, value_name = "URL")]
        sync_queue_url: String,
        /// How many are held, as `held list` shows: a release covers exactly them.
        #[arg(long, value_name = "N")]
        count: usize,
        /// Publish them (default: only print what would be published).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Args, Debug)]
struct HeldLedger {
    /// The stack's ledger table (its LedgerTableName output).
    #[arg(long, value_name = "TABLE")]
    ledger_table: String,
    /// The Region of the table.
    #[arg(long, value_name = "REGION")]
    region: String,
}

pub async fn adopt(args: AdoptArgs) -> Result<Status, Failure> {
    let flags = Flags::without_deletions(&args.target.ledger);
    let settings = settings::resolve(&args.target, flags, true).await?;
    if matches!(settings.ledger, ConfiguredLedger::Memory(_)) {
        return Err(
            "adopt records owners in the ledger: pass --ledger-table (or --stack-name)".into(),
        );
    }
    let (loaded, ledger) = (settings.loaded, settings.ledger);
    let chime = chime_directory(
        settings.app_instance,
        args.target.chime.endpoint_url.clone(),
    )
    .await?;
    let (current, _) = list_chime_users(&chime).await?;
    let listed: Vec<UserId> = current
        .iter()
        .map(|u| u.id.clone())
        .filter(|id| loaded.sorted.active.contains_key(id))
        .collect();
    let records = ledger::records_of(&ledger, &listed)
        .await
        .map_err(|e| e.to_string())?;
    let orphans: Vec<&UserId> = listed
        .iter()
        .filter(|id| records.get(*id).is_none_or(|r| r.owner.is_none()))
        .collect();
    for id in &orphans {
        if args.apply {
            ledger
                .set_owner(id, &loaded.source)
                .await
                .map_err(|e| format!("cannot record the owner of {id}: {e}"))?;
        }
        if args.target.chime.output == Output::Text {
            outln!(
                "{}  {id}",
                if args.apply { "adopted" } else { "would adopt" }
            );
        }
    }
    summarize_adoption(&args, &loaded.source, orphans.len(), listed.len());
    Ok(if orphans.is_empty() {
        Status::Done
    } else {
        Status::Changes
    })
}

fn summarize_adoption(args: &AdoptArgs, source: &ledger::Source, orphans: usize, listed: usize) {
    if args.target.chime.output == Output::Json {
        outln!(
            "{}",
            json!({"schema": "chime-sync.adopt/1", "source": source.as_str(), "adopted": if args.apply { orphans } else { 0 },
                   "wouldAdopt": orphans, "listedInChime": listed, "applied": args.apply})
        );
        return;
    }
    outln!(
        "{} {orphans} Chime users for {source}: owned by no source until now, and listed by \
         {source} ({listed} of its users are in Chime){}",
        if args.apply { "Adopted" } else { "Would adopt" },
        if args.apply {
            ""
        } else {
            ". Run again with --apply to record them."
        }
    );
}

pub async fn held(args: HeldArgs) -> Result<Status, Failure> {
    match args.action {
        HeldAction::List { ledger } => {
            let held = read_held(&ledger).await?;
            for (id, record) in &held {
                outln!("{}", held_line(id, record));
            }
            outln!(
                "{} deletions held{}",
                held.len(),
                if held.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; release them with `chime-sync held release --count {}`",
                        held.len()
                    )
                }
            );
            Ok(if held.is_empty() {
                Status::Done
            } else {
                Status::Changes
            })
        }
        HeldAction::Release {
            ledger,
            sync_queue_url,
            count,
            apply,
        } => release(&ledger, &sync_queue_url, count, apply).await,
    }
}

async fn read_held(args: &HeldLedger) -> Result<Vec<(UserId, UserRecord)>, Failure> {
    let ledger_args = LedgerArgs {
        ledger_table: Some(args.ledger_table.clone()),
        unowned: "keep".to_owned(),
    };
    let (ledger, _) = open_ledger(&ledger_args, &args.region).await?;
    ledger::all_marked(&ledger, Marked::Held, "")
        .await
        .map_err(|e| format!("cannot read the held deletions: {e}").into())
}

fn held_line(id: &UserId, record: &UserRecord) -> String {
    match &record.held {
        Some(h) => format!(
            "held  {id}  by {}  occurred {}  held {}",
            h.by,
            h.occurred_at.map_or("-".to_owned(), |a| a.to_string()),
            h.held_at
        ),
        None => format!("held  {id}"),
    }
}

async fn release(
    args: &HeldLedger,
    queue_url: &str,
    count: usize,
    apply: bool,
) -> Result<Status, Failure> {
    let held = read_held(args).await?;
    if held.len() != count {
        return Err(format!(
            "{} deletions are held, not {count}: review them with `chime-sync held list`, then \
             release with --count {}",
            held.len(),
            held.len()
        )
        .into());
    }
    if count == 0 {
        outln!("No deletion is held: nothing to release.");
        return Ok(Status::Done);
    }
    let messages: Vec<OutgoingMessage> = held.iter().map(|(id, r)| released(id, r)).collect();
    if !apply {
        for (id, record) in &held {
            outln!(
                "would release  {}",
                held_line(id, record).trim_start_matches("held  ")
            );
        }
        outln!("Would release {count} deletions. Run again with --apply to publish them.");
        return Ok(Status::Changes);
    }
    let local = std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let sdk = sdk_config(&args.region, local).await?;
    let queue = SqsQueue::new(&sdk, queue_url, None);
    let mut failed = BTreeMap::new();
    for batch in messages.chunks(chime_sync_core::queue::MAX_BATCH) {
        for (message, result) in batch.iter().zip(queue.send_batch(batch.to_vec()).await) {
            if let Err(e) = result {
                failed.insert(message.group_id.clone(), e.message);
            }
        }
    }
    outln!(
        "Released {} deletions to the sync queue",
        count - failed.len()
    );
    if let Some((id, why)) = failed.iter().next() {
        return Err(format!(
            "{} could not be published (first: {id}: {why})",
            failed.len()
        )
        .into());
    }
    Ok(Status::Changes)
}

/// The released message of a held deletion: as the original was (its
/// source and `occurredAt`), marked released.
fn released(id: &UserId, record: &UserRecord) -> OutgoingMessage {
    let held = record.held.as_ref();
    let origin = Origin {
        released: true,
        ..Origin::from(
            held.map_or_else(ledger::Source::pool, |h| h.by.clone()),
            held.and_then(|h| h.occurred_at),
        )
    };
    let event_id = format!("release-{}-{}", held.map_or(At(0), |h| h.held_at).0, id);
    OutgoingMessage {
        body: event_message(&IdentityEvent::Deprovision(id.clone()), &event_id, &origin),
        group_id: id.to_string(),
        deduplication_id: event_id,
        attributes: BTreeMap::new(),
    }
}
