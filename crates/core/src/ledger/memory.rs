//! The ledger in memory: the CLI's embedded replay, and every handler test.
//! It keeps the [`Ledger`] contract exactly (guard and effects from
//! [`Change`], one lock per call so each call is atomic), and can fail on
//! demand so the unhappy paths are testable.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::{
    At, Change, Counted, HeldDeletion, Ledger, LedgerError, MARK_RETENTION, Marked, MarkedPage,
    Recorded, Source, UnownedPolicy, UserRecord, Window,
};
use crate::identity::UserId;

#[derive(Default)]
struct LedgerState {
    records: BTreeMap<UserId, UserRecord>,
    windows: BTreeMap<(Source, At), u64>,
    chime_users: Option<u64>,
    injected: VecDeque<LedgerError>,
    calls: usize,
}

/// A ledger held in memory.
pub struct InMemoryLedger {
    state: Mutex<LedgerState>,
    page_size: usize,
}

impl Default for InMemoryLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryLedger {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(LedgerState::default()),
            page_size: 1000,
        }
    }

    /// Pages of `marked` hold this many users (tests of paging).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The next calls fail with these errors, one each.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = LedgerError>) {
        self.lock().injected.extend(errors);
    }

    /// A user's record as stored.
    pub fn get(&self, id: &UserId) -> Option<UserRecord> {
        self.lock().records.get(id).cloned()
    }

    /// Every stored record.
    pub fn records(&self) -> BTreeMap<UserId, UserRecord> {
        self.lock().records.clone()
    }

    /// Store a record as it is (test set-up: a user recorded earlier).
    pub fn put(&self, id: UserId, record: UserRecord) {
        self.lock().records.insert(id, record);
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// Forget the records whose deletion was asked for longer ago than
    /// [`MARK_RETENTION`] before `now` (the store's TTL).
    pub fn expire(&self, now: At) {
        let keep_from = now.0.saturating_sub(MARK_RETENTION.as_millis() as u64);
        self.lock()
            .records
            .retain(|_, r| r.deletion.as_ref().is_none_or(|m| m.at.0 >= keep_from));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count the call, and answer an injected failure if one is due.
    fn enter(&self) -> Result<std::sync::MutexGuard<'_, LedgerState>, LedgerError> {
        let mut state = self.lock();
        state.calls += 1;
        match state.injected.pop_front() {
            Some(e) => Err(e),
            None => Ok(state),
        }
    }
}

fn record_in(
    state: &mut LedgerState,
    change: &Change,
    unowned: &UnownedPolicy,
    now: At,
) -> Recorded {
    let before = state.records.get(&change.id).cloned();
    let current = before.clone().unwrap_or_default();
    if let Err(refusal) = change.guard(unowned).check(&current, change) {
        return Recorded::Refused(refusal);
    }
    let next = change.effects(now).apply(&current);
    state.records.insert(change.id.clone(), next);
    Recorded::Applied { before }
}

impl Ledger for InMemoryLedger {
    async fn record(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
    ) -> Result<Recorded, LedgerError> {
        let mut state = self.enter()?;
        Ok(record_in(&mut state, change, unowned, now))
    }

    async fn record_counted(
        &self,
        change: &Change,
        unowned: &UnownedPolicy,
        now: At,
        window: &Window,
        limit: u64,
    ) -> Result<Counted, LedgerError> {
        let mut state = self.enter()?;
        let key = (window.source.clone(), window.start);
        let count = state.windows.get(&key).copied().unwrap_or(0);
        if count >= limit {
            return Ok(Counted::WindowFull);
        }
        let recorded = record_in(&mut state, change, unowned, now);
        // A refused change is not a deletion: the window counts only those
        // that apply, as the store's transaction does.
        if matches!(recorded, Recorded::Applied { .. }) {
            state.windows.insert(key, count + 1);
        }
        Ok(Counted::Recorded(recorded))
    }

    async fn hold(&self, id: &UserId, held: &HeldDeletion) -> Result<(), LedgerError> {
        let mut state = self.enter()?;
        state.records.entry(id.clone()).or_default().held = Some(held.clone());
        Ok(())
    }

    async fn set_owner(&self, id: &UserId, source: &Source) -> Result<(), LedgerError> {
        let mut state = self.enter()?;
        state.records.entry(id.clone()).or_default().owner = Some(source.clone());
        Ok(())
    }

    async fn get_many(&self, ids: &[UserId]) -> Result<Vec<(UserId, UserRecord)>, LedgerError> {
        if ids.len() > super::GET_MANY_MAX {
            return Err(LedgerError::Rejected(format!(
                "{} ids in one read; at most {}",
                ids.len(),
                super::GET_MANY_MAX
            )));
        }
        let state = self.enter()?;
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), state.records.get(id)?.clone())))
            .collect())
    }

    async fn marked(
        &self,
        which: Marked,
        prefix: &str,
        next: Option<String>,
    ) -> Result<MarkedPage, LedgerError> {
        let state = self.enter()?;
        let after = next.unwrap_or_default();
        let mut users: Vec<(UserId, UserRecord)> = state
            .records
            .iter()
            .filter(|(id, _)| id.as_str().starts_with(prefix) && id.as_str() > after.as_str())
            .filter(|(_, r)| match which {
                Marked::Deletions => r.deletion.is_some(),
                Marked::Held => r.held.is_some(),
            })
            .take(self.page_size + 1)
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        let next = (users.len() > self.page_size).then(|| {
            users.truncate(self.page_size);
            users
                .last()
                .map(|(id, _)| id.to_string())
                .unwrap_or_default()
        });
        Ok(MarkedPage { users, next })
    }

    async fn chime_user_count(&self) -> Result<Option<u64>, LedgerError> {
        Ok(self.enter()?.chime_users)
    }

    async fn set_chime_user_count(&self, count: u64) -> Result<(), LedgerError> {
        self.enter()?.chime_users = Some(count);
        Ok(())
    }
}
