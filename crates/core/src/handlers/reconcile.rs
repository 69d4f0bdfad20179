//! The reconcile function: on a schedule, compare the user pool with Chime
//! and publish the differences as schema-v1 events on the sync queue.
//!
//! It writes nothing to Chime: idp-sync stays the single writer, so per-user
//! order, throttling, retries and the dead-letter queue are the queue's, as
//! for every other event. Each run:
//!
//! 1. reads the pool (`ListUsers`, paced at a share of Cognito's quota, backing
//!    off on `TooManyRequestsException`) and Chime (`ListAppInstanceUsers`);
//! 2. plans with the planner the CLI uses ([`crate::planner`]): creates for
//!    active users missing in Chime, updates for renamed ones, deletions for
//!    Chime users no longer active, never for protected ids or ids that are
//!    not subs; in grace mode, deletions already under way are left out
//!    (one describe per deletion candidate);
//! 3. withholds every deletion when more are planned than the breaker allows,
//!    with one ERROR line with the counts, and counts them in the
//!    invocation's metrics (`DeletionsWithheld`, which an alarm watches);
//! 4. publishes the rest (group = sub, deduplication id from the cycle and
//!    the change, so a retried invocation does not double them).
//!
//! ## Pools larger than one invocation
//! The sub space can be split into 16 or 256 shards by the sub's first hex
//! digits (`RECONCILE_SHARDS`). A run then reconciles shard after shard:
//! Cognito is read per shard with a `sub ^= "…"` filter, Chime in one pass
//! across the shards. When the invocation's time runs short the run stops
//! between shards and answers a [`Continuation`] (the next shard, Chime's
//! page token, the few users read beyond the shard) with `done: false`; the
//! template's state machine invokes the function again with it. With
//! `auto` (the default) a cycle starts unsharded, and a pool that does not
//! fit in one invocation continues with 16 shards, then 256.
//!
//! The single pass across shards needs Chime to list users in id order (the
//! local fake does; AWS does not document an order). A sharded run checks
//! it: ids that come out of order stop the cycle with an error, before
//! anything wrong could be planned from them. Unsharded runs read everything
//! and need no order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::time::Instant;
use tracing::{error, info, trace, warn};

use crate::directory::{DeleteMode, Directory, DirectoryUser};
use crate::error::{DirectoryError, ErrorClass, ErrorCode, QueueError};
use crate::identity::UserId;
use crate::ledger::{At, Ledger, Source, UnownedPolicy};
use crate::metrics::{FunctionMetrics, Invocation, Metric};
use crate::planner::guard::{self, GuardError, GuardSettings, Guarded, Observed};
use crate::planner::{self, Action, DeleteBreaker, Plan, PlanOptions};
use crate::profile::DisplayNamePolicy;
use crate::queue::{MAX_BATCH, OutgoingMessage, Queue, fnv1a64};
use crate::rate::Pacer;
use crate::schema::event_message;
use crate::user_pool::{
    self, ActivePolicy, LIST_USERS_QUOTA_RPS, LeftOutCounts, ReadStats, Sorted, UserPool,
    UserPoolError,
};

pub const SOURCE: &str = "reconcile";

/// How the sub space is split (`RECONCILE_SHARDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSetting {
    /// Unsharded first; 16, then 256 shards if a shard does not fit.
    Auto,
    /// Always this many: 1, 16 or 256.
    Fixed(u16),
}

/// Shard counts that split subs by whole hex digits.
pub const SHARD_COUNTS: [u16; 3] = [1, 16, 256];

/// What the function is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub active: ActivePolicy,
    pub names: DisplayNamePolicy,
    /// Ids never deleted (`PROTECTED_USER_IDS`).
    pub protected: BTreeSet<String>,
    pub breaker: DeleteBreaker,
    /// How idp-sync deletes (`DELETE_MODE`); shown in the plan.
    pub delete_mode: DeleteMode,
    /// Whether the pool's absence deletes users nobody owns (`UNOWNED_USERS`).
    pub unowned: UnownedPolicy,
    pub shards: ShardSetting,
    /// `ListUsers` calls per second: a share of Cognito's quota.
    pub pool_rate: f64,
    /// Reading stops this long before the deadline, to leave time to publish.
    pub read_margin: Duration,
    /// Publishing stops this long before the deadline, to answer.
    pub answer_margin: Duration,
    /// `SendMessageBatch` calls in flight at once.
    pub publish_concurrency: usize,
    /// Describes in flight at once (grace mode's screening).
    pub describe_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            active: ActivePolicy::default(),
            names: DisplayNamePolicy::default(),
            protected: BTreeSet::new(),
            breaker: DeleteBreaker::default(),
            delete_mode: DeleteMode::Grace {
                days: DeleteMode::DEFAULT_GRACE_DAYS,
            },
            unowned: UnownedPolicy::Keep,
            shards: ShardSetting::Auto,
            pool_rate: LIST_USERS_QUOTA_RPS * 0.5,
            read_margin: Duration::from_secs(60),
            answer_margin: Duration::from_secs(5),
            publish_concurrency: 8,
            describe_concurrency: 8,
        }
    }
}

/// The function's ports and settings.
pub struct Reconcile<P, D, Q, L> {
    pub pool: P,
    pub directory: D,
    /// The sync queue idp-sync reads.
    pub queue: Q,
    /// Who owns each user, and which deletions are pending.
    pub ledger: L,
    pub settings: Settings,
}

/// How a run begins.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// A new cycle (the schedule, or any other event), named `cycle`.
    Fresh { cycle: String },
    /// The rest of a cycle.
    Continue(Box<Continuation>),
}

/// The event of an invocation: `{"continuation": {…}}` continues a cycle;
/// anything else (EventBridge's scheduled event, the state machine's input,
/// `{}` from a test invoke) starts one, named after the event's `id` when it
/// has one, else after `now`.
pub fn start_from(event: &Value, now: SystemTime) -> Result<Start, serde_json::Error> {
    if let Some(c) = event.get("continuation").filter(|c| !c.is_null()) {
        return Ok(Start::Continue(Box::new(Continuation::deserialize(c)?)));
    }
    Ok(fresh_cycle(event, now))
}

/// A new cycle for an event without a continuation, named after the
/// event's `id` when it has one, else after `now`.
pub fn fresh_cycle(event: &Value, now: SystemTime) -> Start {
    let seed = match event.get("id").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .to_string(),
    };
    Start::Fresh {
        cycle: format!("{:012x}", fnv1a64(&[seed.as_bytes()]) >> 16),
    }
}

/// A Chime user read past the end of a shard, kept for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    pub id: String,
    pub name: String,
    pub metadata: String,
}

/// Counts of a whole cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Pool users read (every status).
    pub pool_users: u64,
    /// Chime users read whose id is a sub.
    pub chime_users: u64,
    /// Of those, read by the invocation that answers this (a continuation's
    /// earlier counts are not what a breaker may trust: see [`run`]).
    #[serde(skip)]
    pub listed_here: u64,
    pub unchanged: u64,
    pub creates: u64,
    pub updates: u64,
    /// Deletions published.
    pub deletes: u64,
    /// Deletions planned (published or withheld).
    pub deletes_planned: u64,
    /// Deletions the breaker withheld.
    pub withheld: u64,
    /// What the breaker allowed the cycle in all, as last judged.
    pub allowed: u64,
    /// Deletions withheld because the pool held unusable users.
    pub refused: u64,
    /// Deletions already scheduled (grace mode).
    pub pending: u64,
    /// Users with a deletion mark in the ledger (pending, or done and not
    /// yet forgotten).
    pub marked: u64,
    /// Pending deletions cancelled: users back in the pool.
    pub restores: u64,
    pub protected: u64,
    /// Chime users whose id is not a sub.
    pub foreign: u64,
    pub cognito_calls: u64,
    pub cognito_throttled: u64,
    pub chime_list_calls: u64,
    pub describes: u64,
    pub send_calls: u64,
}

/// Where a cycle stands between invocations. Small: a page token, a shard
/// number and at most a page of users read ahead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Continuation {
    pub cycle: String,
    /// When the cycle began: what its absences are dated, and what a user
    /// created later is never deleted for. Missing (a continuation from an
    /// earlier release): the epoch, which refuses every absence of the cycle.
    #[serde(default)]
    pub began: At,
    pub shards: u16,
    /// The next shard to reconcile.
    pub shard: u16,
    /// Chime's page token where the next shard's users begin.
    pub chime_token: Option<String>,
    /// Chime was read to its end.
    pub chime_done: bool,
    /// Chime users read ahead, beyond the shards done.
    pub carried: Vec<Carried>,
    /// The breaker tripped earlier in this cycle: no more deletions.
    pub tripped: bool,
    pub totals: Totals,
    /// Left out so far, by reason.
    pub left_out: BTreeMap<String, usize>,
}

impl Continuation {
    fn fresh(cycle: String, began: At, shards: u16) -> Self {
        Self {
            cycle,
            began,
            shards,
            shard: 0,
            chime_token: None,
            chime_done: false,
            carried: Vec::new(),
            tripped: false,
            totals: Totals::default(),
            left_out: BTreeMap::new(),
        }
    }
}

/// What an invocation answers: the state machine continues while `done` is false.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
    pub cycle: String,
    pub shards: u16,
    pub shards_done: u16,
    pub totals: Totals,
    pub left_out: BTreeMap<String, usize>,
}

/// Why a run failed (the invocation reports an error; the next cycle starts afresh).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReconcileError {
    #[error("cannot read the user pool: {0}")]
    Pool(#[from] UserPoolError),
    #[error("cannot list the Chime users: {0}")]
    Chime(DirectoryError),
    #[error("{failed} messages could not be published to the sync queue (first: {first})")]
    Publish { failed: usize, first: String },
    #[error(
        "Chime listed user ids out of order ({before} before {after}), so a sharded run cannot \
         tell which users a shard has; set RECONCILE_SHARDS=1"
    )]
    OutOfOrder { before: String, after: String },
    #[error(
        "one shard of {shards} did not fit in one invocation and there are no finer shards; \
         raise the function's timeout or COGNITO_QUOTA_SHARE_PERCENT"
    )]
    ShardTooLarge { shards: u16 },
    #[error("the continuation is not one this function made: {0}")]
    BadContinuation(String),
    #[error("{0}")]
    Guard(#[from] GuardError),
}

impl ErrorCode for ReconcileError {
    fn code(&self) -> &'static str {
        match self {
            Self::Pool(_) => "PoolUnreadable",
            Self::Chime(_) => "ChimeUnreadable",
            Self::Publish { .. } => "PublishFailed",
            Self::OutOfOrder { .. } => "ChimeOutOfOrder",
            Self::ShardTooLarge { .. } => "ShardTooLarge",
            Self::BadContinuation(_) => "BadContinuation",
            Self::Guard(_) => "LedgerUnreadable",
        }
    }
}

/// The shard a sub belongs to: its first `digits` hex digits.
fn shard_of(id: &str, shards: u16) -> u16 {
    let digits = prefix_digits(shards);
    u16::from_str_radix(id.get(..digits).unwrap_or("0"), 16).unwrap_or(0)
}

fn prefix_digits(shards: u16) -> usize {
    match shards {
        1 => 0,
        16 => 1,
        _ => 2,
    }
}

fn shard_prefix(shard: u16, shards: u16) -> String {
    match prefix_digits(shards) {
        0 => String::new(),
        1 => format!("{shard:x}"),
        _ => format!("{shard:02x}"),
    }
}

/// Run one invocation: from `start`, until the cycle is done or the time is
/// short (then the answer carries the continuation).
///
/// A continuation is the event of an invocation, and anyone allowed to start
/// the state machine can write one. So it is checked ([`checked`]), and it
/// cannot widen the breaker: what this invocation may delete is capped by
/// the Chime users it listed itself ([`allowed_deletions`]), whatever counts
/// the continuation claims.
pub async fn run<P: UserPool, D: Directory, Q: Queue, L: Ledger>(
    start: Start,
    deps: &Reconcile<P, D, Q, L>,
    deadline: Option<Instant>,
) -> Result<RunReport, ReconcileError> {
    let settings = &deps.settings;
    let mut state = match start {
        Start::Fresh { cycle } => {
            let shards = match settings.shards {
                ShardSetting::Auto => 1,
                ShardSetting::Fixed(n) => n,
            };
            info!(source = SOURCE, outcome = "cycle-started", cycle = %cycle, shards);
            Continuation::fresh(cycle, At::now(), shards)
        }
        Start::Continue(c) => {
            let c = checked(*c)?;
            info!(source = SOURCE, outcome = "cycle-continued", cycle = %c.cycle, shard = c.shard, shards = c.shards);
            c
        }
    };
    let pacer = Pacer::new(settings.pool_rate);
    let first_shard = state.shard;
    let read_deadline = deadline.map(|d| d.checked_sub(settings.read_margin).unwrap_or(d));
    let publish_deadline = deadline.map(|d| d.checked_sub(settings.answer_margin).unwrap_or(d));
    while state.shard < state.shards {
        if read_deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(report(state, false));
        }
        match reconcile_shard(&mut state, deps, &pacer, read_deadline, publish_deadline).await? {
            ShardOutcome::Done => state.shard += 1,
            ShardOutcome::OutOfTime => {
                let progressed = state.shard > first_shard;
                return out_of_time(state, settings.shards, progressed);
            }
        }
    }
    summarize(&state);
    // What the feed's breaker takes its percentage of; a failure only
    // leaves it the last count (or its absolute limit).
    if let Err(e) = deps
        .ledger
        .set_chime_user_count(state.totals.chime_users)
        .await
    {
        warn!(source = SOURCE, outcome = "chime-count-unsaved", error = %e);
    }
    Ok(report(state, true))
}

/// The most Chime users a continuation may carry: one page of
/// `ListAppInstanceUsers`, which is all a run reads past its shard.
const MAX_CARRIED: usize = 50;

/// A continuation as this function writes them, or a refusal naming what
/// is wrong with it.
fn checked(c: Continuation) -> Result<Continuation, ReconcileError> {
    let bad = |what: String| Err(ReconcileError::BadContinuation(what));
    if !SHARD_COUNTS.contains(&c.shards) || c.shard > c.shards {
        return bad(format!("shard {} of {}", c.shard, c.shards));
    }
    if c.carried.len() > MAX_CARRIED {
        return bad(format!(
            "{} carried users; at most {MAX_CARRIED}",
            c.carried.len()
        ));
    }
    // A cycle that began in the future would date its absences after
    // changes they must not override.
    if c.began > At(At::now().0.saturating_add(300_000)) {
        return bad(format!("a cycle that begins in the future ({})", c.began));
    }
    Ok(c)
}

/// A shard did not finish in time. If this invocation finished others, the
/// next one continues with it. If it finished none, the shard does not fit
/// in an invocation: with `auto`, the cycle starts again with finer shards
/// (what was published already is harmless to publish again: idp-sync
/// upserts, and deduplication drops repeats); otherwise the run fails.
fn out_of_time(
    state: Continuation,
    setting: ShardSetting,
    progressed: bool,
) -> Result<RunReport, ReconcileError> {
    if progressed {
        return Ok(report(state, false));
    }
    let finer = match (setting, state.shards) {
        (ShardSetting::Auto, 1) => Some(16),
        (ShardSetting::Auto, 16) => Some(256),
        _ => None,
    };
    match finer {
        Some(shards) => {
            warn!(source = SOURCE, outcome = "resharding", cycle = %state.cycle, shards,
                  "a shard does not fit in one invocation; starting the cycle again with {shards} shards");
            let mut next = Continuation::fresh(state.cycle, state.began, shards);
            next.totals.cognito_calls = state.totals.cognito_calls;
            next.totals.cognito_throttled = state.totals.cognito_throttled;
            Ok(report(next, false))
        }
        None => Err(ReconcileError::ShardTooLarge {
            shards: state.shards,
        }),
    }
}

fn report(mut state: Continuation, done: bool) -> RunReport {
    // What this invocation listed is no figure of the cycle's: the next
    // invocation counts its own.
    state.totals.listed_here = 0;
    RunReport {
        done,
        cycle: state.cycle.clone(),
        shards: state.shards,
        shards_done: state.shard,
        totals: state.totals,
        left_out: state.left_out.clone(),
        continuation: (!done).then_some(state),
    }
}

enum ShardOutcome {
    Done,
    OutOfTime,
}

/// Reconcile the shard `state.shard`: read both sides, judge the plan,
/// publish it, count it. On success `state` holds the Chime position after
/// the shard and the totals with it.
async fn reconcile_shard<P: UserPool, D: Directory, Q: Queue, L: Ledger>(
    state: &mut Continuation,
    deps: &Reconcile<P, D, Q, L>,
    pacer: &Pacer,
    read_deadline: Option<Instant>,
    publish_deadline: Option<Instant>,
) -> Result<ShardOutcome, ReconcileError> {
    let Some(read) = read_shard(state, deps, pacer, read_deadline).await? else {
        return Ok(ShardOutcome::OutOfTime);
    };
    let judged = judge_shard(state, deps, &read).await?;
    let messages: Vec<(Action, OutgoingMessage)> = judged
        .guarded
        .plan
        .actions
        .iter()
        .map(|a| (a.clone(), outgoing(a, &read.sorted, state)))
        .collect();
    let settings = &deps.settings;
    let published = publish(
        &deps.queue,
        messages,
        settings.publish_concurrency,
        publish_deadline,
    )
    .await;
    state.totals.send_calls += published.calls;
    if published.out_of_time {
        return Ok(ShardOutcome::OutOfTime);
    }
    if let Some(first) = published.failed.first() {
        return Err(ReconcileError::Publish {
            failed: published.failed.len(),
            first: first.clone(),
        });
    }
    count_shard(state, read, judged);
    Ok(ShardOutcome::Done)
}

/// One shard as read: who the pool lists (sorted), who Chime holds, and
/// where the Chime listing stands after it.
struct ShardRead {
    prefix: String,
    sorted: Sorted,
    chime: ChimeShard,
    position: Position,
}

/// Read the pool's users of the shard and Chime's, side by side; `None`
/// when the deadline came first.
async fn read_shard<P: UserPool, D: Directory, Q: Queue, L: Ledger>(
    state: &mut Continuation,
    deps: &Reconcile<P, D, Q, L>,
    pacer: &Pacer,
    read_deadline: Option<Instant>,
) -> Result<Option<ShardRead>, ReconcileError> {
    let settings = &deps.settings;
    let prefix = shard_prefix(state.shard, state.shards);
    let filter = (!prefix.is_empty()).then(|| user_pool::sub_prefix_filter(&prefix));
    let mut stats = ReadStats::default();
    let mut sorted = Sorted::default();
    let pool_read = user_pool::read_users(
        &deps.pool,
        filter.as_deref(),
        pacer,
        read_deadline,
        &mut stats,
        |page| sorted.add(page, &settings.active, &settings.names),
    );
    let chime_read = read_chime_shard(&deps.directory, state, read_deadline);
    let (pool_done, chime) = tokio::join!(pool_read, chime_read);
    state.totals.cognito_calls += stats.calls;
    state.totals.cognito_throttled += stats.throttled;
    let mut chime = chime?;
    state.totals.chime_list_calls += chime.calls;
    let (Some(()), Some(position)) = (pool_done?, chime.position.take()) else {
        return Ok(None);
    };
    Ok(Some(ShardRead {
        prefix,
        sorted,
        chime,
        position,
    }))
}

/// A shard's plan after the guard, the refusal of an untrustworthy listing
/// and the breaker, with what they withheld.
struct JudgedShard {
    guarded: Guarded,
    left_out: LeftOutCounts,
    /// Deletions planned before the refusal and the breaker.
    planned: usize,
    refused: usize,
    withheld: usize,
    allowed: usize,
    listed_here: u64,
    chime_users: u64,
}

/// Plan the shard, guard the plan, and take out the deletions an incomplete
/// listing or the breaker forbids.
async fn judge_shard<P: UserPool, D: Directory, Q: Queue, L: Ledger>(
    state: &mut Continuation,
    deps: &Reconcile<P, D, Q, L>,
    read: &ShardRead,
) -> Result<JudgedShard, ReconcileError> {
    let settings = &deps.settings;
    let (sorted, chime) = (&read.sorted, &read.chime);
    let plan = planner::plan(
        sorted.active.values(),
        &chime.users,
        PlanOptions {
            delete_missing: true,
            protected: &settings.protected,
        },
    );
    let mut left_out = sorted.left_out.clone();
    left_out.add("protected", plan.protected_kept);
    left_out.add("not a sub (not ours)", chime.foreign);
    let listed_here = state.totals.listed_here + chime.listed_here;
    let chime_users = state.totals.chime_users + chime.users.len() as u64;
    let already = usize::try_from(state.totals.deletes_planned).unwrap_or(usize::MAX);
    let allowed = allowed_deletions(&settings.breaker, chime_users, listed_here, already);
    let by_id: BTreeMap<UserId, DirectoryUser> = chime
        .users
        .iter()
        .map(|u| (u.id.clone(), u.clone()))
        .collect();
    let observed = Observed {
        desired: sorted,
        chime: &by_id,
        began: state.began,
        prefix: &read.prefix,
    };
    let mut guarded = guard::guard(
        plan,
        observed,
        &deps.directory,
        &deps.ledger,
        &guard_settings(settings),
        allowed,
    )
    .await?;
    left_out.merge(&guarded.kept);
    let refused = refuse_incomplete_listing(state, sorted, &mut guarded.plan);
    let planned = guarded.plan.deletions();
    let withheld = if state.tripped || already + planned > allowed {
        state.tripped = true;
        guarded.plan.take_deletions().len()
    } else {
        0
    };
    Ok(JudgedShard {
        guarded,
        left_out,
        planned,
        refused,
        withheld,
        allowed,
        listed_here,
        chime_users,
    })
}

/// Incomplete input (users the pool listed unusably, or an empty unsharded
/// pool): no deletion from this shard. Answers how many were taken out.
fn refuse_incomplete_listing(state: &Continuation, sorted: &Sorted, plan: &mut Plan) -> usize {
    let unusable = sorted.unusable.len();
    let empty_pool = state.shards == 1 && sorted.read == 0;
    if unusable == 0 && !empty_pool {
        return 0;
    }
    let withheld = plan.take_deletions().len();
    error!(source = SOURCE, outcome = "deletions-refused", cycle = %state.cycle, shard = state.shard,
           unusable, empty_pool, withheld, first = sorted.unusable.first().map(String::as_str).unwrap_or("-"),
           "the pool's listing cannot be trusted to be complete; no deletion from it");
    withheld
}

/// The shard is done: move the Chime position on and count what it did.
fn count_shard(state: &mut Continuation, read: ShardRead, judged: JudgedShard) {
    let JudgedShard {
        guarded, left_out, ..
    } = &judged;
    let plan = &guarded.plan;
    let pending = guarded
        .kept
        .0
        .get("deletion already scheduled")
        .copied()
        .unwrap_or(0);
    state.chime_token = read.position.token;
    state.chime_done = read.position.done;
    state.carried = read.position.carried;
    let t = &mut state.totals;
    t.describes += guarded.describes as u64;
    t.marked += guarded.marked as u64;
    t.restores += guarded.restores as u64;
    t.listed_here = judged.listed_here;
    t.allowed = judged.allowed as u64;
    t.pool_users += read.sorted.read as u64;
    t.chime_users = judged.chime_users;
    t.unchanged += plan.unchanged as u64;
    t.creates += plan.count("create") as u64;
    t.updates += plan.count("update") as u64;
    t.deletes += plan.deletions() as u64;
    t.deletes_planned += (judged.planned + judged.refused) as u64;
    t.withheld += judged.withheld as u64;
    t.refused += judged.refused as u64;
    t.pending += pending as u64;
    t.protected += plan.protected_kept as u64;
    t.foreign += read.chime.foreign as u64;
    for (reason, n) in &left_out.0 {
        *state.left_out.entry(reason.clone()).or_default() += n;
    }
    info!(source = SOURCE, outcome = "shard-reconciled", cycle = %state.cycle, shard = state.shard,
          shards = state.shards, creates = plan.count("create"), updates = plan.count("update"),
          restores = plan.count("restore"), deletes = plan.deletions(),
          withheld = judged.withheld, unchanged = plan.unchanged);
}

/// The guard's settings: the pool is the source the function reads.
fn guard_settings(settings: &Settings) -> GuardSettings {
    GuardSettings {
        source: Source::pool(),
        unowned: settings.unowned.clone(),
        describe_concurrency: settings.describe_concurrency,
    }
}

/// How many deletions the cycle may plan in all, `already` being those
/// planned by its earlier shards: `max(limit, percent × Chime users)` of the
/// cycle, capped by what the Chime users listed by this invocation alone
/// would allow, plus `already`. A continuation can claim any count, so
/// only the users this invocation saw can raise what it may delete; a
/// cycle that fits one invocation is judged exactly as before.
pub fn allowed_deletions(
    breaker: &DeleteBreaker,
    chime_users: u64,
    listed_here: u64,
    already: usize,
) -> usize {
    let whole = |n: u64| breaker.allowed(usize::try_from(n).unwrap_or(usize::MAX));
    whole(chime_users).min(already.saturating_add(whole(listed_here)))
}

/// Where Chime's listing stands after a shard.
struct Position {
    token: Option<String>,
    done: bool,
    carried: Vec<Carried>,
}

/// The Chime users of the current shard.
struct ChimeShard {
    users: Vec<DirectoryUser>,
    /// Users this invocation listed itself (not carried in).
    listed_here: u64,
    foreign: usize,
    calls: u64,
    /// `None` when the deadline came first.
    position: Option<Position>,
}

/// How often a failed list call is tried again (beyond the SDK's retries).
const LIST_RETRIES: u32 = 3;

/// Read Chime forward from the continuation's position, keeping the users of
/// the current shard and carrying those of later shards. Unsharded, it reads
/// to the end in whatever order Chime lists; sharded, it stops at the first
/// page that reaches past the shard, and refuses ids out of order.
async fn read_chime_shard<D: Directory>(
    directory: &D,
    state: &Continuation,
    deadline: Option<Instant>,
) -> Result<ChimeShard, ReconcileError> {
    let (shard, shards) = (state.shard, state.shards);
    let mut out = ChimeShard {
        users: Vec::new(),
        listed_here: 0,
        foreign: 0,
        calls: 0,
        position: None,
    };
    let (mut carried, mut last) = take_carried(directory, state, &mut out.users)?;
    let mut token = state.chime_token.clone();
    let mut done = state.chime_done;
    // Users of later shards read already: the listing is past this shard.
    let mut past = !carried.is_empty();
    while !done && !past {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(out);
        }
        let page = list_with_retries(directory, token.clone(), &mut out.calls).await?;
        trace!(
            source = SOURCE,
            outcome = "chime-page",
            call = out.calls,
            users = page.users.len(),
            foreign = page.foreign,
            more = page.next_token.is_some()
        );
        out.foreign += page.foreign;
        out.listed_here += page.users.len() as u64;
        for user in page.users {
            check_order(&mut last, &user, shards)?;
            if shard_of(user.id.as_str(), shards) == shard {
                out.users.push(user);
            } else {
                past = true;
                carried.push(Carried {
                    id: user.id.to_string(),
                    name: user.name,
                    metadata: user.metadata,
                });
            }
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => {
                token = None;
                done = true;
            }
        }
    }
    out.position = Some(Position {
        token,
        done,
        carried,
    });
    Ok(out)
}

/// The users an earlier invocation read past its shard: those of this
/// shard join `users`, the rest stay carried. Answers them and the last id
/// seen, where the order check goes on from.
fn take_carried<D: Directory>(
    directory: &D,
    state: &Continuation,
    users: &mut Vec<DirectoryUser>,
) -> Result<(Vec<Carried>, Option<String>), ReconcileError> {
    let mut carried = Vec::new();
    let mut last = None;
    for c in &state.carried {
        let Ok(id) = UserId::parse(&c.id) else {
            return Err(ReconcileError::BadContinuation(format!(
                "carried id {}",
                c.id
            )));
        };
        if shard_of(id.as_str(), state.shards) == state.shard {
            users.push(DirectoryUser::listed(
                id.clone(),
                directory.app_instance_arn().user_arn(&id),
                c.name.clone(),
                c.metadata.clone(),
            ));
        } else {
            carried.push(c.clone());
        }
        last = Some(c.id.clone());
    }
    Ok((carried, last))
}

/// Sharded, the listing must come in id order (a shard is a range of ids):
/// a user at or before the last one seen stops the cycle.
fn check_order(
    last: &mut Option<String>,
    user: &DirectoryUser,
    shards: u16,
) -> Result<(), ReconcileError> {
    if shards <= 1 {
        return Ok(());
    }
    if let Some(before) = last.as_deref()
        && user.id.as_str() <= before
    {
        return Err(ReconcileError::OutOfOrder {
            before: before.to_owned(),
            after: user.id.to_string(),
        });
    }
    *last = Some(user.id.to_string());
    Ok(())
}

async fn list_with_retries<D: Directory>(
    directory: &D,
    token: Option<String>,
    calls: &mut u64,
) -> Result<crate::directory::DirectoryPage, ReconcileError> {
    let mut attempt = 0;
    loop {
        *calls += 1;
        match directory.list(token.clone()).await {
            Ok(page) => return Ok(page),
            Err(e)
                if e.class() == ErrorClass::Retryable
                    && attempt < LIST_RETRIES
                    && !matches!(e, DirectoryError::AccessDenied(_)) =>
            {
                attempt += 1;
                warn!(source = SOURCE, outcome = "chime-list-retry", error = %e);
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
            Err(e) => return Err(ReconcileError::Chime(e)),
        }
    }
}

/// The message that asks idp-sync for `action`: group = the sub, a
/// deduplication id (also the event id) from the cycle and the change, and
/// the origin the ledger judges it by (the pool; a create or update dated
/// by the user's last change in the pool, a deletion as an absence observed
/// when the cycle began).
fn outgoing(action: &Action, desired: &Sorted, state: &Continuation) -> OutgoingMessage {
    let kind = match action {
        Action::Create(_) => 'c',
        Action::Update { .. } => 'u',
        Action::Restore { .. } => 'r',
        Action::Delete(_) => 'd',
    };
    let id = action.user_id();
    let event_id = format!("reconcile-{}-{kind}-{id}", state.cycle);
    let origin = guard::origin_for(action, &Source::pool(), desired, state.began);
    OutgoingMessage {
        body: event_message(&action.event(), &event_id, &origin),
        group_id: id.to_string(),
        deduplication_id: event_id,
        attributes: BTreeMap::new(),
    }
}

/// A change and the message that asks for it.
type Pending = (Action, OutgoingMessage);

struct Published {
    calls: u64,
    failed: Vec<String>,
    out_of_time: bool,
}

/// Attempts per message before a publish gives up on it.
const SEND_ATTEMPTS: u32 = 3;

/// Publish in batches of ten, `concurrency` batches at a time; entries that
/// fail retryably are sent again (twice). Each published change is logged.
async fn publish<Q: Queue>(
    queue: &Q,
    messages: Vec<(Action, OutgoingMessage)>,
    concurrency: usize,
    deadline: Option<Instant>,
) -> Published {
    let mut result = Published {
        calls: 0,
        failed: Vec::new(),
        out_of_time: false,
    };
    let mut todo = messages;
    for attempt in 1..=SEND_ATTEMPTS {
        if todo.is_empty() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            result.out_of_time = true;
            return result;
        }
        let batches: Vec<Vec<(Action, OutgoingMessage)>> = {
            let mut batches = Vec::new();
            let mut rest = todo.into_iter().peekable();
            while rest.peek().is_some() {
                batches.push(rest.by_ref().take(MAX_BATCH).collect());
            }
            batches
        };
        result.calls += batches.len() as u64;
        let sent: Vec<Vec<(Pending, Result<(), QueueError>)>> =
            stream::iter(batches.into_iter().map(|batch| async move {
                let results = queue
                    .send_batch(batch.iter().map(|(_, m)| m.clone()).collect())
                    .await;
                batch.into_iter().zip(results).collect::<Vec<_>>()
            }))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        todo = Vec::new();
        for ((action, message), outcome) in sent.into_iter().flatten() {
            match outcome {
                Ok(()) => {
                    info!(source = SOURCE, sub = %action.user_id(), change = action.verb(), outcome = "published")
                }
                Err(e) if e.class == ErrorClass::Retryable && attempt < SEND_ATTEMPTS => {
                    todo.push((action, message));
                }
                Err(e) => {
                    warn!(source = SOURCE, sub = %action.user_id(), change = action.verb(), outcome = "publish-failed", error = %e.message);
                    result.failed.push(format!(
                        "{} {}: {}",
                        action.verb(),
                        action.user_id(),
                        e.message
                    ));
                }
            }
        }
    }
    result
}

/// The end of a cycle: one INFO line with the counts, and, when the breaker
/// withheld deletions, one ERROR line with the breaker's counts (the
/// invocation's metrics count them too: `DeletionsWithheld`, see [`metrics`]).
fn summarize(state: &Continuation) {
    let t = &state.totals;
    if t.withheld > 0 {
        let allowed = t.allowed;
        error!(source = SOURCE, outcome = "deletions-withheld", cycle = %state.cycle,
               deletions_planned = t.deletes_planned, deletions_allowed = allowed,
               withheld = t.withheld, chime_users = t.chime_users,
               "{}", breaker_message(t.deletes_planned, t.withheld, allowed, t.chime_users));
    }
    info!(source = SOURCE, outcome = "cycle-done", cycle = %state.cycle, shards = state.shards,
          pool_users = t.pool_users, chime_users = t.chime_users, creates = t.creates,
          updates = t.updates, deletes = t.deletes, withheld = t.withheld, refused = t.refused,
          pending = t.pending, marked = t.marked, restores = t.restores,
          unchanged = t.unchanged, cognito_calls = t.cognito_calls,
          cognito_throttled = t.cognito_throttled, chime_list_calls = t.chime_list_calls);
}

/// The breaker's ERROR message: the counts, and how an operator releases them.
pub fn breaker_message(planned: u64, withheld: u64, allowed: u64, chime_users: u64) -> String {
    format!(
        "mass-delete breaker: {planned} deletions planned, at most {allowed} allowed \
         (max(DELETE_LIMIT, DELETE_LIMIT_PERCENT of {chime_users} Chime users)); none of the \
         {withheld} withheld was published. Review, then release with \
         `chime-sync reconcile --user-pool-id … --apply --delete-missing --allow-deletes N`"
    )
}

/// What the reconcile function publishes per invocation. `DeletionsWithheld`
/// is the breaker's metric, which the template's alarm watches.
pub const METRICS: FunctionMetrics = FunctionMetrics {
    source: SOURCE,
    error_kind: "ReconcileFailed",
    metrics: &[
        Metric::CreatesPublished,
        Metric::UpdatesPublished,
        Metric::DeletesPublished,
        Metric::DeletionsWithheld,
        Metric::DeletionsRefused,
        Metric::Failed,
        Metric::InvalidEvent,
    ],
};

impl Start {
    /// The cycle's totals when the invocation began (zero for a fresh cycle).
    pub fn totals(&self) -> Totals {
        match self {
            Self::Fresh { .. } => Totals::default(),
            Self::Continue(c) => c.totals,
        }
    }
}

/// One invocation's metrics: what it published and withheld (the cycle's
/// totals now, less those it began with), or one `Failed`; and the Chime
/// calls it made.
pub fn metrics<D: Directory>(
    before: &Totals,
    result: &Result<RunReport, ReconcileError>,
    directory: &D,
) -> Invocation {
    let mut m = Invocation::new(METRICS);
    match result {
        Ok(report) => {
            let (t, b) = (&report.totals, before);
            for (metric, now, then) in [
                (Metric::CreatesPublished, t.creates, b.creates),
                (Metric::UpdatesPublished, t.updates, b.updates),
                (Metric::DeletesPublished, t.deletes, b.deletes),
                (Metric::DeletionsWithheld, t.withheld, b.withheld),
                (Metric::DeletionsRefused, t.refused, b.refused),
            ] {
                m.add(metric, now.saturating_sub(then));
            }
        }
        Err(_) => {
            m.add(Metric::Failed, 1);
        }
    }
    m.chime_calls(directory.take_call_stats());
    m
}

#[cfg(test)]
mod tests;
