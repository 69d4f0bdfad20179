//! A Cognito user pool in moto, seeded through the real API with users in
//! every status the reconcile function meets: confirmed, admin-created
//! (FORCE_CHANGE_PASSWORD), federated (EXTERNAL_PROVIDER, through
//! `moto_cognito.py`), asked to reset their password (RESET_REQUIRED),
//! signed up but not confirmed (UNCONFIRMED), and disabled ones.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use futures_util::StreamExt;

use crate::moto::Moto;

/// One seeded user, as the test expects the reconcile to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededUser {
    pub username: String,
    pub sub: String,
    pub status: &'static str,
    pub enabled: bool,
    /// The display name the default attribute order gives it.
    pub name: String,
}

impl SeededUser {
    /// Whether the default policy gives it a Chime user: enabled, and
    /// confirmed, federated, admin-created or asked to reset its password.
    pub fn active(&self) -> bool {
        self.enabled
            && matches!(
                self.status,
                "CONFIRMED" | "EXTERNAL_PROVIDER" | "FORCE_CHANGE_PASSWORD" | "RESET_REQUIRED"
            )
    }
}

/// A pool in moto.
pub struct SeededPool {
    pub id: String,
    pub client_id: String,
    pub users: Vec<SeededUser>,
}

impl SeededPool {
    pub fn active(&self) -> impl Iterator<Item = &SeededUser> {
        self.users.iter().filter(|u| u.active())
    }
}

/// The real Cognito client, pointed at moto.
pub fn client(moto: &Moto) -> Client {
    Client::new(&moto.sdk_config())
}

/// Create an empty pool named `name`; its id.
pub async fn create_pool(cognito: &Client, name: &str) -> String {
    cognito
        .create_user_pool()
        .pool_name(name)
        .send()
        .await
        .expect("CreateUserPool")
        .user_pool
        .and_then(|p| p.id)
        .expect("a pool id")
}

/// A user attribute.
pub fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .expect("attribute")
}

/// What kind of user the `n`th is: every status, a fifth inactive.
fn kind(n: usize) -> (&'static str, bool) {
    match n % 10 {
        0..=3 => ("CONFIRMED", true),
        4 => ("FORCE_CHANGE_PASSWORD", true),
        5 => ("EXTERNAL_PROVIDER", true),
        6 => ("RESET_REQUIRED", true),
        7 => ("UNCONFIRMED", true),
        8 => ("CONFIRMED", false),
        _ => ("EXTERNAL_PROVIDER", false),
    }
}

/// Create a pool named `name` with `count` users (`kind` spreads them over
/// the statuses), eight requests at a time.
pub async fn seed_pool(moto: &Moto, name: &str, count: usize) -> SeededPool {
    let cognito = client(moto);
    let pool = create_pool(&cognito, name).await;
    let client_id = cognito
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("app")
        .send()
        .await
        .expect("CreateUserPoolClient")
        .user_pool_client
        .and_then(|c| c.client_id)
        .expect("a client id");
    let users: Vec<SeededUser> = futures_util::stream::iter(0..count)
        .map(|n| add_user(&cognito, &pool, &client_id, n))
        .buffer_unordered(8)
        .collect()
        .await;
    SeededPool {
        id: pool,
        client_id,
        users,
    }
}

/// The `n`th user of [`kind`]: (username, status, enabled, display name, attributes).
fn nth(
    n: usize,
) -> (
    String,
    &'static str,
    bool,
    String,
    Vec<(&'static str, String)>,
) {
    let (status, enabled) = kind(n);
    // Every third user has no name attribute: its name is the email's local part.
    let name = if n.is_multiple_of(3) {
        format!("user{n}")
    } else {
        format!("User {n}")
    };
    let mut attributes = vec![
        ("email", format!("user{n}@example.com")),
        ("email_verified", "true".to_owned()),
    ];
    if !n.is_multiple_of(3) {
        attributes.push(("name", name.clone()));
    }
    let username = match status {
        "EXTERNAL_PROVIDER" => format!("Google_{n:08}"),
        _ => format!("user{n}"),
    };
    (username, status, enabled, name, attributes)
}

/// The seed file `moto_cognito.py` reads: pools of `count` users each ([`kind`]).
pub fn seed_file(pools: &[(&str, usize)]) -> std::path::PathBuf {
    let pools: Vec<serde_json::Value> = pools
        .iter()
        .map(|(name, count)| {
            let users: Vec<serde_json::Value> = (0..*count)
                .map(|n| {
                    let (username, status, enabled, _, attributes) = nth(n);
                    let attributes: Vec<serde_json::Value> = attributes
                        .into_iter()
                        .map(|(k, v)| serde_json::json!({"Name": k, "Value": v}))
                        .collect();
                    serde_json::json!({"username": username, "status": status,
                                       "enabled": enabled, "attributes": attributes})
                })
                .collect();
            serde_json::json!({"name": name, "users": users})
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "chime-sync-moto-seed-{}-{}.json",
        std::process::id(),
        pools.len()
    ));
    std::fs::write(&path, serde_json::json!({ "pools": pools }).to_string())
        .expect("write the seed file");
    path
}

/// A pool `moto_cognito.py` seeded from [`seed_file`], read back through the API
/// (ListUserPools, ListUsers): each user with the sub moto gave it.
pub async fn seeded_pool(moto: &Moto, name: &str, count: usize) -> SeededPool {
    let cognito = client(moto);
    let pools = cognito
        .list_user_pools()
        .max_results(60)
        .send()
        .await
        .expect("ListUserPools");
    let pool = pools
        .user_pools()
        .iter()
        .find(|p| p.name() == Some(name))
        .and_then(|p| p.id())
        .expect("the seeded pool")
        .to_owned();
    let mut subs = std::collections::BTreeMap::new();
    let mut token = None;
    loop {
        let page = cognito
            .list_users()
            .user_pool_id(&pool)
            .set_pagination_token(token)
            .send()
            .await
            .expect("ListUsers");
        for u in page.users() {
            let sub = u
                .attributes()
                .iter()
                .find(|a| a.name() == "sub")
                .and_then(|a| a.value())
                .expect("a sub");
            subs.insert(u.username().unwrap_or_default().to_owned(), sub.to_owned());
        }
        match page.pagination_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let users = (0..count)
        .map(|n| {
            let (username, status, enabled, name, _) = nth(n);
            SeededUser {
                sub: subs
                    .get(&username)
                    .expect("every seeded user listed")
                    .clone(),
                username,
                status,
                enabled,
                name,
            }
        })
        .collect();
    SeededPool {
        id: pool,
        client_id: String::new(),
        users,
    }
}

/// Add the `n`th user of [`kind`] through the API; returns it with the sub
/// Cognito gave it.
pub async fn add_user(cognito: &Client, pool: &str, client_id: &str, n: usize) -> SeededUser {
    let (username, status, enabled, name, attributes) = nth(n);
    let attributes: Vec<AttributeType> = attributes.iter().map(|(k, v)| attribute(k, v)).collect();
    let sub = if status == "UNCONFIRMED" {
        cognito
            .sign_up()
            .client_id(client_id)
            .username(&username)
            .password("Passw0rd!Passw0rd")
            .set_user_attributes(Some(attributes))
            .send()
            .await
            .expect("SignUp")
            .user_sub
    } else {
        let created = cognito
            .admin_create_user()
            .user_pool_id(pool)
            .username(&username)
            .message_action(MessageActionType::Suppress)
            .set_user_attributes(Some(attributes))
            .send()
            .await
            .expect("AdminCreateUser");
        let user = created.user.expect("the created user");
        user.attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .expect("a sub")
            .to_owned()
    };
    if matches!(status, "CONFIRMED" | "RESET_REQUIRED") {
        cognito
            .admin_set_user_password()
            .user_pool_id(pool)
            .username(&username)
            .password("Passw0rd!Passw0rd")
            .permanent(true)
            .send()
            .await
            .expect("AdminSetUserPassword");
    }
    if status == "RESET_REQUIRED" {
        cognito
            .admin_reset_user_password()
            .user_pool_id(pool)
            .username(&username)
            .send()
            .await
            .expect("AdminResetUserPassword");
    }
    if !enabled {
        cognito
            .admin_disable_user()
            .user_pool_id(pool)
            .username(&username)
            .send()
            .await
            .expect("AdminDisableUser");
    }
    SeededUser {
        username,
        sub,
        status,
        enabled,
        name,
    }
}

/// Take a user out of the pool (AdminDeleteUser).
pub async fn delete_user(cognito: &Client, pool: &str, username: &str) {
    cognito
        .admin_delete_user()
        .user_pool_id(pool)
        .username(username)
        .send()
        .await
        .expect("AdminDeleteUser");
}
