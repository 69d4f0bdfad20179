//! Lambda entrypoint of the credential exchange (behind a Function URL):
//! build the Chime directory, the JWKS fetcher and the STS client once per
//! sandbox, then serve requests. The signing keys are cached for the life of
//! the sandbox by the handler's key cache.

use std::process::ExitCode;

use chime_sync_aws::http::rustls_client_config;
use chime_sync_aws::{
    ChimeDirectory, CredentialExchangeConfig, HttpsJwksSource, RootSet, StsCredentialIssuer,
    TrustRoots, lambda_sdk_config,
};
use chime_sync_core::handlers::credential_exchange::{self, CredentialExchange};
use chime_sync_runtime::{
    Diagnostic, Incoming, LambdaEvent, emit, exit_code, init_tracing, report_init_error,
    require_lambda, run, service_fn, unreadable,
};

// One thread, as the other functions (docs/PERFORMANCE.md): one invocation at a time, and its
// calls (JWKS, Chime, STS) wait on I/O.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Err(outside_lambda) = require_lambda(env!("CARGO_BIN_NAME")) {
        return outside_lambda;
    }
    init_tracing();
    let config = match CredentialExchangeConfig::from_env() {
        Ok(config) => config,
        Err(e) => return report_init_error(e).await,
    };
    // One SSL_CERT_FILE rule for the SDK clients and the JWKS fetch; an issuer can be any
    // public host, so the JWKS fetch trusts Mozilla's roots, the SDK clients AWS's.
    let tls =
        match TrustRoots::from_env().and_then(|roots| rustls_client_config(&roots, RootSet::Web)) {
            Ok(tls) => tls,
            Err(e) => return report_init_error(e).await,
        };
    let sdk = match lambda_sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return report_init_error(e).await,
    };
    let deps = &CredentialExchange {
        allowed_origins: config.allowed_origins.clone(),
        ensure_user: config.ensure_user,
        names: config.display_names.clone(),
        max_session: config.max_session,
        ..CredentialExchange::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            HttpsJwksSource::new(tls, config.jwks_timeout),
            StsCredentialIssuer::new(&sdk, config.chat_user_role_arn.clone(), config.sts_timeout),
            config.issuers.clone(),
        )
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let payload = event.payload.json().map_err(|e| {
            unreadable("CredentialExchangeFailed", credential_exchange::METRICS, &e)
        })?;
        let (response, outcome) = credential_exchange::handle(payload, deps).await;
        emit(&credential_exchange::metrics(&outcome, &deps.directory));
        Ok::<_, Diagnostic>(response)
    }))
    .await;
    exit_code(served)
}
