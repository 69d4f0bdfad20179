//! The six Chime SDK Identity operations on the wire: paths, bodies and status codes as in the
//! Smithy model (`smithy.api#http` traits) and the Rust SDK's `protocol_serde` deserializers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::{Expiration, NewUser, Tag, UserRecord};
use crate::state::Shared;
use crate::validate;

/// The collection path; the user path is `/app-instance-users/{AppInstanceUserArn}` with the ARN
/// percent-encoded into one segment by the SDKs (a catch-all also accepts it unencoded).
pub(crate) const USERS_PATH: &str = "/app-instance-users";
/// The suffix of `PutAppInstanceUserExpirationSettings`'s path, after the user ARN.
pub(crate) const EXPIRATION_SUFFIX: &str = "/expiration-settings";

/// The router of the API operations.
pub(crate) fn api_router() -> Router<Arc<Shared>> {
    Router::new()
        .route(USERS_PATH, post(create).get(list))
        .route(
            "/app-instance-users/{*arn}",
            get(describe).put(put_on_user).delete(delete),
        )
}

/// Parses a JSON body; an empty body reads as `{}` so missing members get "is required" errors.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|err| ApiError::bad_request(format!("The request body is not valid: {err}")))
}

fn user_arn_from_path(
    path: Result<Path<String>, PathRejection>,
) -> Result<validate::UserArn, ApiError> {
    let Path(raw) = path.map_err(|err| {
        ApiError::bad_request(format!("Invalid AppInstanceUserArn in path: {err}"))
    })?;
    validate::parse_user_arn(&raw)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireTag {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireExpiration {
    expiration_days: Option<i64>,
    expiration_criterion: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    app_instance_arn: Option<String>,
    app_instance_user_id: Option<String>,
    name: Option<String>,
    metadata: Option<String>,
    client_request_token: Option<String>,
    tags: Option<Vec<WireTag>>,
    expiration_settings: Option<WireExpiration>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ArnOutput {
    app_instance_user_arn: String,
}

fn validate_expiration(settings: &WireExpiration) -> Result<Expiration, ApiError> {
    let days = *validate::required(
        &settings.expiration_days,
        "ExpirationSettings.ExpirationDays",
    )?;
    let criterion = validate::required(
        &settings.expiration_criterion,
        "ExpirationSettings.ExpirationCriterion",
    )?;
    validate::expiration(days, criterion)?;
    Ok(Expiration {
        days,
        criterion: criterion.clone(),
    })
}

fn wire_expiration(expiration: Expiration) -> WireExpiration {
    WireExpiration {
        expiration_days: Some(expiration.days),
        expiration_criterion: Some(expiration.criterion),
    }
}

fn validate_create(body: CreateBody) -> Result<NewUser, ApiError> {
    let app_instance_arn = validate::required(&body.app_instance_arn, "AppInstanceArn")?;
    validate::app_instance_arn(app_instance_arn, "AppInstanceArn")?;
    let user_id = validate::required(&body.app_instance_user_id, "AppInstanceUserId")?;
    validate::user_id(user_id)?;
    let name = validate::required(&body.name, "Name")?;
    validate::name(name)?;
    if let Some(metadata) = &body.metadata {
        validate::metadata(metadata)?;
    }
    let token = validate::required(&body.client_request_token, "ClientRequestToken")?;
    validate::client_request_token(token)?;
    let tags = match &body.tags {
        None => Vec::new(),
        Some(tags) => {
            let pairs = tags
                .iter()
                .map(|tag| {
                    let key = validate::required(&tag.key, "Tags.Key")?;
                    let value = validate::required(&tag.value, "Tags.Value")?;
                    Ok((key.clone(), value.clone()))
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            validate::tags(&pairs)?;
            pairs
                .into_iter()
                .map(|(key, value)| Tag { key, value })
                .collect()
        }
    };
    let expiration = body
        .expiration_settings
        .as_ref()
        .map(validate_expiration)
        .transpose()?;
    Ok(NewUser {
        app_instance_arn: app_instance_arn.clone(),
        user_id: user_id.clone(),
        name: name.clone(),
        metadata: body.metadata,
        client_request_token: token.clone(),
        tags,
        expiration,
    })
}

/// `CreateAppInstanceUser`: `POST /app-instance-users` → 201 `{"AppInstanceUserArn"}`.
async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let new = validate_create(parse_body(&body)?)?;
    let now = shared.now_epoch_secs();
    let arn = shared.with_directory(|dir| dir.create(new, now))?;
    Ok((
        StatusCode::CREATED,
        Json(ArnOutput {
            app_instance_user_arn: arn,
        }),
    )
        .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireUser {
    app_instance_user_arn: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
    created_timestamp: f64,
    last_updated_timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_settings: Option<WireExpiration>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeOutput {
    app_instance_user: WireUser,
}

impl From<UserRecord> for WireUser {
    fn from(user: UserRecord) -> Self {
        Self {
            app_instance_user_arn: user.app_instance_user_arn,
            name: user.name,
            metadata: user.metadata,
            created_timestamp: user.created_timestamp,
            last_updated_timestamp: user.last_updated_timestamp,
            expiration_settings: user.expiration.map(wire_expiration),
        }
    }
}

/// `DescribeAppInstanceUser`: `GET /app-instance-users/{arn}` → 200 `{"AppInstanceUser": {...}}`.
async fn describe(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<DescribeOutput>, ApiError> {
    let arn = user_arn_from_path(path)?;
    let user = shared.with_directory(|dir| dir.describe(&arn.app_instance_arn, &arn.user_id))?;
    Ok(Json(DescribeOutput {
        app_instance_user: user.into(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateBody {
    name: Option<String>,
    metadata: Option<String>,
}

/// `PUT` on a user path: `PutAppInstanceUserExpirationSettings` when it ends in
/// `/expiration-settings`, `UpdateAppInstanceUser` otherwise.
async fn put_on_user(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Path(raw) = path.map_err(|err| {
        ApiError::bad_request(format!("Invalid AppInstanceUserArn in path: {err}"))
    })?;
    match raw.strip_suffix(EXPIRATION_SUFFIX) {
        Some(user) => put_expiration(&shared, validate::parse_user_arn(user)?, &body),
        None => update(&shared, validate::parse_user_arn(&raw)?, &body),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutExpirationBody {
    expiration_settings: Option<WireExpiration>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutExpirationOutput {
    app_instance_user_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_settings: Option<WireExpiration>,
}

/// `PutAppInstanceUserExpirationSettings`: `PUT /app-instance-users/{arn}/expiration-settings`
/// with `ExpirationSettings` (optional in the model) → 200 `{"AppInstanceUserArn",
/// "ExpirationSettings"?}`. Without settings it does what [`crate::ClearAnswer`] says.
fn put_expiration(
    shared: &Shared,
    arn: validate::UserArn,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let body: PutExpirationBody = parse_body(body)?;
    let expiration = body
        .expiration_settings
        .as_ref()
        .map(validate_expiration)
        .transpose()?;
    let clear = shared.expiration_clear();
    let (arn, kept) = shared.with_directory(|dir| {
        dir.put_expiration(&arn.app_instance_arn, &arn.user_id, expiration, clear)
    })?;
    Ok(Json(PutExpirationOutput {
        app_instance_user_arn: arn,
        expiration_settings: kept.map(wire_expiration),
    })
    .into_response())
}

/// `UpdateAppInstanceUser`: `PUT /app-instance-users/{arn}` with `Name` and `Metadata` (both
/// required by the model) → 200 `{"AppInstanceUserArn"}`.
fn update(shared: &Shared, arn: validate::UserArn, body: &Bytes) -> Result<Response, ApiError> {
    let body: UpdateBody = parse_body(body)?;
    let name = validate::required(&body.name, "Name")?;
    validate::name(name)?;
    let metadata = validate::required(&body.metadata, "Metadata")?;
    validate::metadata(metadata)?;
    let (name, metadata) = (name.clone(), metadata.clone());
    let now = shared.now_epoch_secs();
    let updated = shared.with_directory(|dir| {
        dir.update(&arn.app_instance_arn, &arn.user_id, name, metadata, now)
    })?;
    Ok(Json(ArnOutput {
        app_instance_user_arn: updated,
    })
    .into_response())
}

/// `DeleteAppInstanceUser`: `DELETE /app-instance-users/{arn}` → 204, empty body.
async fn delete(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let arn = user_arn_from_path(path)?;
    shared.with_directory(|dir| dir.delete(&arn.app_instance_arn, &arn.user_id))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    app_instance_user_arn: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListOutput {
    app_instance_arn: String,
    app_instance_users: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Page size when `max-results` is absent. The model has no default and AWS documents none;
/// the model's maximum is the least surprising choice.
pub const DEFAULT_MAX_RESULTS: usize = 50;

/// `ListAppInstanceUsers`: `GET /app-instance-users?app-instance-arn=&max-results=&next-token=`
/// → 200 `{"AppInstanceArn", "AppInstanceUsers": [...], "NextToken"?}`, users ordered by id.
async fn list(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ListOutput>, ApiError> {
    let Query(query) =
        query.map_err(|err| ApiError::bad_request(format!("Invalid query string: {err}")))?;
    let app_instance_arn =
        validate::required(&query.get("app-instance-arn").cloned(), "app-instance-arn")?.clone();
    validate::app_instance_arn(&app_instance_arn, "app-instance-arn (AppInstanceArn)")?;
    let max = match query.get("max-results") {
        None => DEFAULT_MAX_RESULTS,
        Some(raw) => validate::max_results(raw)?,
    };
    let next_token = query.get("next-token").filter(|t| !t.is_empty());
    if next_token.is_some_and(|t| t.len() > 2048) {
        return Err(ApiError::bad_request(
            "next-token (NextToken) must be at most 2048 characters long",
        ));
    }
    let page = shared
        .with_directory(|dir| dir.list(&app_instance_arn, max, next_token.map(String::as_str)))?;
    Ok(Json(ListOutput {
        app_instance_arn,
        app_instance_users: page
            .users
            .into_iter()
            .map(|u| Summary {
                app_instance_user_arn: u.app_instance_user_arn,
                name: u.name,
                metadata: u.metadata,
            })
            .collect(),
        next_token: page.next_token,
    }))
}
