//! Wire tests: `CognitoUserPool` (the real `aws-sdk-cognitoidentityprovider`
//! client and our error mapping) against the local fake of `ListUsers`, which
//! enforces Cognito's quota with `TooManyRequestsException`.

use crate::sdk_config;
use std::time::Duration;

use chime_sync_aws::{CognitoConfig, CognitoUserPool, UserPoolId};
use chime_sync_core::UserPool;
use chime_sync_core::UserPoolError;
use chime_sync_core::rate::Pacer;
use chime_sync_core::user_pool::{ReadStats, read_users, sub_prefix_filter};
use testkit::cognito_fake::{FakeCognito, user};

const POOL: &str = "eu-central-1_AbCdEf123";

fn pool(fake: &FakeCognito, id: &str) -> CognitoUserPool {
    CognitoUserPool::new(
        &sdk_config(),
        CognitoConfig {
            endpoint_url: Some(fake.endpoint_url()),
            ..CognitoConfig::new(UserPoolId::parse(id).unwrap())
        },
    )
}

fn sub(n: u32) -> String {
    format!("{:02x}{n:06x}-0000-4000-8000-{n:012x}", n % 256)
}

async fn within<F: std::future::Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test exceeded 120 s")
}

/// Reads the whole pool at 1,000 calls a second: how many users came, and the reader's stats.
async fn read_all(pool: &CognitoUserPool) -> (usize, ReadStats) {
    let mut stats = ReadStats::default();
    let mut all = 0;
    read_users(pool, None, &Pacer::new(1000.0), None, &mut stats, |p| {
        all += p.len()
    })
    .await
    .unwrap();
    (all, stats)
}

#[tokio::test]
async fn pages_filters_and_statuses_come_through_the_sdk() {
    within(async {
        let fake = FakeCognito::start(1000.0).await.unwrap();
        let users = (0..130)
            .map(|n| {
                let status = if n % 2 == 0 {
                    "CONFIRMED"
                } else {
                    "EXTERNAL_PROVIDER"
                };
                user(&format!("u{n}"), &sub(n), status, n % 10 != 3, Some("N"))
            })
            .collect();
        fake.set_users(POOL, users);
        let pool = pool(&fake, POOL);
        let first = pool.list_users(None, None).await.unwrap();
        assert_eq!(first.users.len(), 60);
        assert!(first.next_token.is_some());
        assert_eq!(first.users[1].status, "EXTERNAL_PROVIDER");
        assert!(!first.users[3].enabled);
        assert_eq!(first.users[0].sub(), Some(sub(0).as_str()));
        let (all, stats) = read_all(&pool).await;
        assert_eq!((all, stats.calls), (130, 3));
        let filter = sub_prefix_filter("0a");
        let page = pool.list_users(Some(&filter), None).await.unwrap();
        assert!(!page.users.is_empty());
        assert!(
            page.users
                .iter()
                .all(|u| u.sub().unwrap().starts_with("0a"))
        );
    })
    .await
}

/// Past the quota Cognito answers TooManyRequestsException: the SDK retries it (it is in the
/// SDK's throttling codes), and once its attempts are spent the reader backs off and asks
/// again; every user is read.
#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_backed_off_by_the_reader() {
    within(async {
        let fake = FakeCognito::start(1000.0).await.unwrap();
        fake.set_users(
            POOL,
            (0..70)
                .map(|n| user("u", &sub(n), "CONFIRMED", true, None))
                .collect(),
        );
        let pool = pool(&fake, POOL);
        // Three attempts of the first call, all throttled: the call fails throttled.
        fake.throttle_next(3);
        let e = pool.list_users(None, None).await.unwrap_err();
        assert!(matches!(e, UserPoolError::Throttled(_)), "{e:?}");
        assert_eq!(fake.counts().throttled, 3, "the SDK tried three times");
        // The reader backs off and gets every page.
        fake.throttle_next(4);
        let (all, stats) = read_all(&pool).await;
        assert_eq!(all, 70);
        assert_eq!(
            stats.throttled, 1,
            "one call failed after the SDK's attempts"
        );
        assert_eq!(fake.counts().throttled, 7);
    })
    .await
}

#[tokio::test]
async fn a_wrong_pool_is_pool_not_found() {
    within(async {
        let fake = FakeCognito::start(1000.0).await.unwrap();
        let e = pool(&fake, "eu-central-1_Nope")
            .list_users(None, None)
            .await
            .unwrap_err();
        assert!(matches!(e, UserPoolError::PoolNotFound(_)), "{e:?}");
    })
    .await
}
