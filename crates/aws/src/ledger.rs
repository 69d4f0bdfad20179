//! [`LedgerTable`]: the `Ledger` port over one DynamoDB table.
//!
//! One item per user, keyed by the user id (`id`), holding what the rules
//! of `chime_sync_core::ledger` decide: `owner`, `changedAt` (ms), the
//! deletion mark (`delBy`, `delAbsence`, `delAt`) and a held deletion
//! (`heldBy`, `heldAt`, `heldOccurredAt`, `heldEventId`). Two sparse global
//! secondary indexes list the marked users by id: `deletions` (key
//! `delIndex`, set only while a mark is) and `held` (key `heldIndex`).
//! `expiresAt` (seconds) is the table's TTL attribute: set with a deletion
//! mark, removed when a change clears it.
//!
//! Each change is one `UpdateItem` whose condition is the change's guard
//! and whose update is its effects, both translated here from the core's
//! [`Guard`] and [`Effects`] and nothing else; when the condition fails,
//! DynamoDB returns the item (`ReturnValuesOnConditionCheckFailure`), and
//! the core's [`Guard::check`] says why. A counted deletion is a two-item
//! transaction: the window's count and the user's record, both or neither.
//! The feed breaker's windows (`window#<source>#<start>`) and the last
//! reconcile's Chime user count (`stats#chime-users`) are items of the same
//! table, whose keys can never be a user's (a user id is a UUID).

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Builder as ClientConfigBuilder;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chime_sync_core::UserId;
use chime_sync_core::ledger::{
    At, Change, Counted, DeletionMark, Effects, Guard, HeldDeletion, Ledger, LedgerError,
    MARK_RETENTION, MarkEffect, Marked, MarkedPage, Recorded, Source, UnownedPolicy, UserRecord,
    Window,
};

/// The indexes and their key attributes (template.yaml declares the same).
pub const DELETIONS_INDEX: &str = "deletions";
pub const HELD_INDEX: &str = "held";
const DEL_KEY: &str = "delIndex";
const HELD_KEY: &str = "heldIndex";
/// The one value of each index's partition key: one partition, queried by
/// id prefix (a shard's users), small because marks are few.
const INDEX_VALUE: &str = "1";
const STATS_KEY: &str = "stats#chime-users";
/// How often unprocessed keys of a batch read are asked for again.
const UNPROCESSED_RETRIES: u32 = 5;

/// The ledger in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct LedgerTable {
    client: Client,
    table: String,
}

impl LedgerTable {
    /// A client for `table`; `operation_timeout` bounds each call, retries
    /// included. The endpoint comes from the `SdkConfig`, which honours
    /// `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL` (tests run moto).
    pub fn new(sdk: &SdkConfig, table: impl Into<String>, operation_timeout: Duration) -> Self {
        let mut builder = ClientConfigBuilder::from(sdk);
        builder.set_http_client(crate::http::http_client_for(sdk));
        let builder = builder.timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(operation_timeout)
                .build(),
        );
        Self::from_client(Client::from_conf(builder.build()), table)
    }

    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_owned(), s(id))])
}

/// A change's condition and update, as DynamoDB expressions with their
/// placeholders.
///
/// Every attribute is named through a `#placeholder`: `owner` and `count`
/// are among DynamoDB's reserved words, and a name added later must not
/// become one by surprise.
#[derive(Debug, Default)]
struct Expression {
    condition: Vec<String>,
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    values: HashMap<String, AttributeValue>,
    names: HashMap<String, String>,
}

impl Expression {
    fn value(&mut self, name: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{name}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `#attribute`, registered.
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `attribute = value`, for SET.
    fn set(&mut self, attribute: &str, value: String) {
        let name = self.name(attribute);
        self.set.push(format!("{name} = {value}"));
    }

    fn remove(&mut self, attributes: &[&str]) {
        for attribute in attributes {
            let name = self.name(attribute);
            self.remove.push(name);
        }
    }

    /// The guard as a condition: each field one clause, all of them ANDed.
    fn guard(&mut self, guard: &Guard) {
        if let Some(at) = guard.not_changed_after {
            let (at, changed) = (self.value("at", n(at.0)), self.name("changedAt"));
            self.condition.push(format!(
                "(attribute_not_exists({changed}) OR {changed} <= {at})"
            ));
        }
        if let Some(owner) = &guard.owned_by {
            let (value, name) = (self.value("owner", s(owner.as_str())), self.name("owner"));
            self.condition.push(if guard.or_unowned {
                format!("({name} = {value} OR attribute_not_exists({name}))")
            } else {
                format!("{name} = {value}")
            });
        }
    }

    /// The effects as an update.
    fn effects(&mut self, effects: &Effects) {
        if let Some(at) = effects.changed_at {
            let at = self.value("changed", n(at.0));
            self.set("changedAt", at);
        }
        if let Some(owner) = &effects.owner {
            let owner = self.value("newowner", s(owner.as_str()));
            self.set("owner", owner);
        } else if let Some(claim) = &effects.claim {
            let (claim, name) = (self.value("claim", s(claim.as_str())), self.name("owner"));
            self.set("owner", format!("if_not_exists({name}, {claim})"));
        }
        match &effects.mark {
            MarkEffect::Keep => {}
            MarkEffect::Clear => {
                self.remove(&["delBy", "delAbsence", "delAt", DEL_KEY, "expiresAt"])
            }
            MarkEffect::Set(mark) => self.mark(mark),
        }
        if effects.clear_held {
            self.remove(&[
                "heldBy",
                "heldAt",
                "heldOccurredAt",
                "heldEventId",
                HELD_KEY,
            ]);
        }
    }

    fn mark(&mut self, mark: &DeletionMark) {
        let expires = (mark.at.0 / 1000).saturating_add(MARK_RETENTION.as_secs());
        let by = self.value("delby", s(mark.by.as_str()));
        let absence = self.value("delabsence", AttributeValue::Bool(mark.absence));
        let at = self.value("delat", n(mark.at.0));
        let index = self.value("delindex", s(INDEX_VALUE));
        let expires = self.value("expires", n(expires));
        self.set("delBy", by);
        self.set("delAbsence", absence);
        self.set("delAt", at);
        self.set(DEL_KEY, index);
        self.set("expiresAt", expires);
    }

    fn condition(&self) -> Option<String> {
        (!self.condition.is_empty()).then(|| self.condition.join(" AND "))
    }

    fn update(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        parts.join(" ")
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
}

fn expression(change: &Change, unowned: &UnownedPolicy, now: At) -> Expression {
    let mut e = Expression::default();
    e.guard(&change.guard(unowned));
    e.effects(&change.effects(now));
    e
}

/// The record an item holds; an attribute this version cannot read is
/// `Corrupt`, never guessed.
fn record_of(item: &HashMap<String, AttributeValue>) -> Result<UserRecord, LedgerError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    let number = |name: &str| -> Result<Option<u64>, LedgerError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| LedgerError::Corrupt(format!("{name} is not a whole number"))),
            Some(_) => Err(LedgerError::Corrupt(format!("{name} is not a number"))),
        }
    };
    let source = |name: &str| -> Result<Option<Source>, LedgerError> {
        text(name)
            .map(|raw| Source::parse(raw).map_err(|e| LedgerError::Corrupt(format!("{name}: {e}"))))
            .transpose()
    };
    let deletion = match (source("delBy")?, number("delAt")?) {
        (Some(by), Some(at)) => Some(DeletionMark {
            by,
            absence: matches!(item.get("delAbsence"), Some(AttributeValue::Bool(true))),
            at: At(at),
        }),
        _ => None,
    };
    let held = match (source("heldBy")?, number("heldAt")?) {
        (Some(by), Some(held_at)) => Some(HeldDeletion {
            by,
            occurred_at: number("heldOccurredAt")?.map(At),
            event_id: text("heldEventId").map(str::to_owned),
            held_at: At(held_at),
        }),
        _ => None,
    };
    Ok(UserRecord {
        owner: source("owner")?,
        changed_at: number("changedAt")?.map(At),
        deletion,
        held,
    })
}

fn record_or_none(
    item: Option<&HashMap<String, AttributeValue>>,
) -> Result<Option<UserRecord>, LedgerError> {
    item.filter(|i| !i.is_empty()).map(record_of).transpose()
}

/// Why a condition failed, from the item DynamoDB returned with the failure.
fn refusal(
    change: &Change,
    unowned: &UnownedPolicy,
    item: Option<&HashMap<String, AttributeValue>>,
) -> Result<Recorded, LedgerError> {
    let record = record_or_none(item)?.unwrap_or_default();
    match change.guard(unowned).check(&record, change) {
        Err(refusal) => Ok(Recorded::Refused(refusal)),
        Ok(()) => Err(LedgerError::Corrupt(
            "DynamoDB refused the change's condition, but the record it returned satisfies it"
                .to_owned(),
        )),
    }
}

impl LedgerTable {
    /// One item's guarded update, for a transaction.
    fn update(&self, id: &str, e: &Expression) -> Result<TransactWriteItem, LedgerError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression(e.update())
            .set_condition_expression(e.condition())
            .set_expression_attribute_values(e.values())
            .set_expression_attribute_names(e.names())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| LedgerError::Rejected(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl Ledger for LedgerTable {
    async fn record(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
    ) -> Result<Recorded, LedgerError> {
        let e = expression(change, unowned, now);
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(change.id.as_str())))
            .update_expression(e.update())
            .set_condition_expression(e.condition())
            .set_expression_attribute_values(e.values())
            .set_expression_attribute_names(e.names())
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Recorded::Applied {
                before: record_or_none(out.attributes())?,
            }),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                let UpdateItemError::ConditionalCheckFailedException(failed) = service.err() else {
                    return Err(LedgerError::Corrupt("unreachable".to_owned()));
                };
                refusal(change, unowned, failed.item())
            }
            Err(e) => Err(map_error(&e)),
        }
    }

    /// One transaction: the window's count and the record. The record's
    /// state before is not returned by a transaction, so `before` is
    /// `None` (a deletion needs it for nothing).
    async fn record_counted(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
        window: &Window,
        limit: u64,
    ) -> Result<Counted, LedgerError> {
        let mut count = Expression::default();
        let (limit_value, counted) = (count.value("limit", n(limit)), count.name("n"));
        count.condition.push(format!(
            "(attribute_not_exists({counted}) OR {counted} < {limit_value})"
        ));
        let one = count.value("one", n(1));
        count.add.push(format!("{counted} {one}"));
        let expires = count.value("expires", n(window.start.0 / 1000 + 2 * 86_400));
        count.set("expiresAt", expires);
        let window_key = format!("window#{}#{}", window.source, window.start.0);
        let items = vec![
            self.update(&window_key, &count)?,
            self.update(change.id.as_str(), &expression(change, unowned, now))?,
        ];
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Counted::Recorded(Recorded::Applied { before: None })),
            Err(SdkError::ServiceError(service)) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
                let E::TransactionCanceledException(cancelled) = service.err() else {
                    return Err(map_error(&SdkError::ServiceError(service)));
                };
                let reasons = cancelled.cancellation_reasons();
                let failed = |i: usize| {
                    reasons
                        .get(i)
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed")
                };
                if failed(0) {
                    Ok(Counted::WindowFull)
                } else if failed(1) {
                    let item = reasons.get(1).and_then(|r| r.item());
                    Ok(Counted::Recorded(refusal(change, unowned, item)?))
                } else {
                    Err(LedgerError::Unavailable(format!(
                        "the transaction was cancelled: {}",
                        reasons
                            .iter()
                            .filter_map(|r| r.code())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
            Err(e) => Err(map_error(&e)),
        }
    }

    async fn hold(&self, id: &UserId, held: &HeldDeletion) -> Result<(), LedgerError> {
        let mut e = Expression::default();
        let by = e.value("by", s(held.by.as_str()));
        let at = e.value("at", n(held.held_at.0));
        let index = e.value("index", s(INDEX_VALUE));
        e.set("heldBy", by);
        e.set("heldAt", at);
        e.set(HELD_KEY, index);
        if let Some(occurred) = held.occurred_at {
            let occurred = e.value("occurred", n(occurred.0));
            e.set("heldOccurredAt", occurred);
        }
        if let Some(event_id) = &held.event_id {
            let event_id = e.value("event", s(event_id.clone()));
            e.set("heldEventId", event_id);
        }
        self.plain_update(id.as_str(), &e).await
    }

    async fn set_owner(&self, id: &UserId, source: &Source) -> Result<(), LedgerError> {
        let mut e = Expression::default();
        let owner = e.value("owner", s(source.as_str()));
        e.set("owner", owner);
        self.plain_update(id.as_str(), &e).await
    }

    async fn get_many(&self, ids: &[UserId]) -> Result<Vec<(UserId, UserRecord)>, LedgerError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<_> = ids.iter().map(|id| key(id.as_str())).collect();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .build()
            .map_err(|e| LedgerError::Rejected(e.to_string()))?;
        let mut items = Vec::new();
        for attempt in 0..=UNPROCESSED_RETRIES {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| map_error(&e))?;
            items.extend(
                out.responses()
                    .and_then(|r| r.get(&self.table))
                    .cloned()
                    .unwrap_or_default(),
            );
            match out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .cloned()
            {
                Some(rest) if !rest.keys().is_empty() => {
                    if attempt == UNPROCESSED_RETRIES {
                        return Err(LedgerError::Throttled(format!(
                            "{} keys still unprocessed after {UNPROCESSED_RETRIES} retries",
                            rest.keys().len()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    pending = rest;
                }
                _ => break,
            }
        }
        items
            .iter()
            .map(|item| {
                let id = item
                    .get("id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|raw| UserId::parse(raw).ok())
                    .ok_or_else(|| LedgerError::Corrupt("an item without a user id".to_owned()))?;
                Ok((id, record_of(item)?))
            })
            .collect()
    }

    async fn marked(
        &self,
        which: Marked,
        prefix: &str,
        next: Option<String>,
    ) -> Result<MarkedPage, LedgerError> {
        let (index, index_key) = match which {
            Marked::Deletions => (DELETIONS_INDEX, DEL_KEY),
            Marked::Held => (HELD_INDEX, HELD_KEY),
        };
        let mut condition = format!("{index_key} = :v");
        let mut values = HashMap::from([(":v".to_owned(), s(INDEX_VALUE))]);
        if !prefix.is_empty() {
            condition.push_str(" AND begins_with(id, :p)");
            values.insert(":p".to_owned(), s(prefix));
        }
        let start = next.map(|id| {
            HashMap::from([
                ("id".to_owned(), s(id)),
                (index_key.to_owned(), s(INDEX_VALUE)),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| map_error(&e))?;
        let mut users = Vec::new();
        for item in out.items() {
            let Some(id) = item.get("id").and_then(|v| v.as_s().ok()) else {
                continue;
            };
            let id = UserId::parse(id).map_err(|_| {
                LedgerError::Corrupt("a marked item whose id is not a user id".to_owned())
            })?;
            users.push((id, record_of(item)?));
        }
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get("id"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(MarkedPage { users, next })
    }

    async fn chime_user_count(&self) -> Result<Option<u64>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(STATS_KEY)))
            .send()
            .await
            .map_err(|e| map_error(&e))?;
        match out.item().and_then(|i| i.get("count")) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
                LedgerError::Corrupt("the Chime user count is not a number".to_owned())
            }),
            Some(_) => Err(LedgerError::Corrupt(
                "the Chime user count is not a number".to_owned(),
            )),
        }
    }

    async fn set_chime_user_count(&self, count: u64) -> Result<(), LedgerError> {
        let mut e = Expression::default();
        let value = e.value("count", n(count));
        e.set("count", value);
        self.plain_update(STATS_KEY, &e).await
    }
}

impl LedgerTable {
    async fn plain_update(&self, id: &str, e: &Expression) -> Result<(), LedgerError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression(e.update())
            .set_expression_attribute_values(e.values())
            .set_expression_attribute_names(e.names())
            .send()
            .await
            .map_err(|e| map_error(&e))?;
        Ok(())
    }
}

/// Every DynamoDB failure as a [`LedgerError`], in one place.
pub(crate) fn map_error<E>(err: &SdkError<E, HttpResponse>) -> LedgerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = || DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) => LedgerError::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            LedgerError::Transport(detail())
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let why = crate::service_error_text(Some(code), status, service.err().message());
            match code {
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TransactionConflictException" => LedgerError::Throttled(why),
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "ResourceNotFoundException" => LedgerError::AccessDenied(why),
                _ if status >= 500 => LedgerError::Unavailable(why),
                _ => LedgerError::Rejected(why),
            }
        }
        _ => LedgerError::Transport(detail()),
    }
}

/// The ledger `LEDGER_TABLE` names: the table, or memory for a local loop.
pub enum ConfiguredLedger {
    Table(LedgerTable),
    Memory(chime_sync_core::ledger::memory::InMemoryLedger),
}

impl ConfiguredLedger {
    /// Whether records live only in this process (`LEDGER_TABLE=memory`).
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Memory(_))
    }

    /// The ledger at `location`; a ledger in memory is logged as a warning,
    /// since nothing it records outlives the sandbox.
    pub fn new(sdk: &SdkConfig, location: &crate::config::LedgerLocation) -> Self {
        match location {
            crate::config::LedgerLocation::Table(table) => {
                Self::Table(LedgerTable::new(sdk, table, crate::config::LEDGER_TIMEOUT))
            }
            crate::config::LedgerLocation::Memory => {
                tracing::warn!(
                    source = "ledger",
                    outcome = "ledger-in-memory",
                    "LEDGER_TABLE=memory: ownership is kept in this sandbox only (local development)"
                );
                Self::Memory(chime_sync_core::ledger::memory::InMemoryLedger::new())
            }
        }
    }
}

/// Forward each call to the ledger in use.
macro_rules! either {
    ($self:ident, $ledger:ident => $call:expr) => {
        match $self {
            ConfiguredLedger::Table($ledger) => $call.await,
            ConfiguredLedger::Memory($ledger) => $call.await,
        }
    };
}

impl Ledger for ConfiguredLedger {
    async fn record(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
    ) -> Result<Recorded, LedgerError> {
        either!(self, l => l.record(change, unowned, now))
    }

    async fn record_counted(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
        window: &Window,
        limit: u64,
    ) -> Result<Counted, LedgerError> {
        either!(self, l => l.record_counted(change, unowned, now, window, limit))
    }

    async fn hold(&self, id: &UserId, held: &HeldDeletion) -> Result<(), LedgerError> {
        either!(self, l => l.hold(id, held))
    }

    async fn set_owner(&self, id: &UserId, source: &Source) -> Result<(), LedgerError> {
        either!(self, l => l.set_owner(id, source))
    }

    async fn get_many(&self, ids: &[UserId]) -> Result<Vec<(UserId, UserRecord)>, LedgerError> {
        either!(self, l => l.get_many(ids))
    }

    async fn marked(
        &self,
        which: Marked,
        prefix: &str,
        next: Option<String>,
    ) -> Result<MarkedPage, LedgerError> {
        either!(self, l => l.marked(which, prefix, next))
    }

    async fn chime_user_count(&self) -> Result<Option<u64>, LedgerError> {
        either!(self, l => l.chime_user_count())
    }

    async fn set_chime_user_count(&self, count: u64) -> Result<(), LedgerError> {
        either!(self, l => l.set_chime_user_count(count))
    }
}
