//! Sessions already issued in this sandbox, so a client that asks again (a
//! page reload, a loop) gets the same credentials instead of another
//! `AssumeRole`: STS's request quota is per account, and one user in a loop
//! must not spend it for everyone.
//!
//! A session is reused only for the same issuer and user, only after that
//! user's token was validated again, while it has at least
//! [`SessionCache::MIN_LEFT`] to run, and never when it would outlive the
//! token presented now (a session must not last longer than the token it
//! was exchanged for). The cache is bounded; when full, expired sessions go
//! first, then everything (a sandbox serving that many users at once is
//! busy enough that one more `AssumeRole` each is the lesser cost).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::sts::TemporaryCredentials;
use crate::identity::UserId;

/// One issued session and how long it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSession {
    pub credentials: TemporaryCredentials,
    pub duration: Duration,
}

/// Sessions by (issuer key, user).
#[derive(Debug, Default)]
pub struct SessionCache {
    sessions: Mutex<HashMap<(String, UserId), CachedSession>>,
}

impl SessionCache {
    /// Least time a reused session still has to run.
    pub const MIN_LEFT: Duration = Duration::from_secs(10 * 60);
    /// A token's `exp` is in whole seconds and STS counts a session from
    /// its own clock: a session issued for "the rest of the token" may end a
    /// moment after it.
    pub const ROUNDING: Duration = Duration::from_secs(5);
    /// Most sessions kept.
    pub const CAPACITY: usize = 10_000;

    pub fn new() -> Self {
        Self::default()
    }

    /// The session issued to `user` through `issuer`, when it may be handed
    /// out again at `now` to a holder of a token that expires at `token_expiry`.
    pub fn reusable(
        &self,
        issuer: &str,
        user: &UserId,
        token_expiry: SystemTime,
        now: SystemTime,
    ) -> Option<CachedSession> {
        let sessions = self.lock();
        let cached = sessions.get(&(issuer.to_owned(), user.clone()))?;
        let expiration = cached.credentials.expiration;
        let outlives = expiration > token_expiry + Self::ROUNDING;
        (expiration >= now + Self::MIN_LEFT && !outlives).then(|| cached.clone())
    }

    /// Keep `session` for `user` through `issuer`, replacing an older one.
    pub fn keep(&self, issuer: &str, user: &UserId, session: CachedSession, now: SystemTime) {
        let mut sessions = self.lock();
        if sessions.len() >= Self::CAPACITY {
            sessions.retain(|_, s| s.credentials.expiration > now + Self::MIN_LEFT);
            if sessions.len() >= Self::CAPACITY {
                sessions.clear();
            }
        }
        sessions.insert((issuer.to_owned(), user.clone()), session);
    }

    /// Forget every session (a new sandbox).
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, UserId), CachedSession>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "6f1c2d3e-0b4a-4c5d-8e9f-a0b1c2d3e4f5";

    fn session(expires_in: Duration, now: SystemTime) -> CachedSession {
        CachedSession {
            credentials: TemporaryCredentials {
                access_key_id: "ASIA".into(),
                secret_access_key: "s".into(),
                session_token: "t".into(),
                expiration: now + expires_in,
            },
            duration: expires_in,
        }
    }

    #[test]
    fn a_session_is_reused_only_while_it_lasts_and_never_past_the_token() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let user = UserId::parse(SUB).unwrap();
        let cache = SessionCache::new();
        cache.keep("a", &user, session(Duration::from_secs(3600), now), now);
        let hour = now + Duration::from_secs(3600);
        assert!(cache.reusable("a", &user, hour, now).is_some());
        assert!(
            cache.reusable("b", &user, hour, now).is_none(),
            "another issuer"
        );
        let shorter_token = now + Duration::from_secs(1800);
        assert!(
            cache.reusable("a", &user, shorter_token, now).is_none(),
            "would outlive the token"
        );
        let late = now + Duration::from_secs(3600 - 599);
        assert!(
            cache
                .reusable("a", &user, hour + Duration::from_secs(600), late)
                .is_none(),
            "less than ten minutes left"
        );
    }

    #[test]
    fn a_full_cache_drops_expired_sessions_first() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let cache = SessionCache::new();
        for n in 0..SessionCache::CAPACITY {
            let id = UserId::parse(&format!("6f1c2d3e-0b4a-4c5d-8e9f-{n:012x}")).unwrap();
            let left = if n == 0 { 3600 } else { 60 };
            cache.keep("a", &id, session(Duration::from_secs(left), now), now);
        }
        let user = UserId::parse(SUB).unwrap();
        cache.keep("a", &user, session(Duration::from_secs(3600), now), now);
        assert_eq!(cache.len(), 2, "the one live session and the new one");
    }
}
