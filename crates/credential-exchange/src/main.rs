//! Lambda entrypoint of the credential exchange (behind a Function URL):
//! build the Chime directory, the JWKS fetcher and the STS client once per
//! sandbox, then serve requests. The signing keys are cached for the life of
//! the sandbox by the handler's key cache.

use std::process::ExitCode;

use chime_sync_aws::http::rustls_client_config;
use chime_sync_aws::{
    ChimeDirectory, ConfiguredLedger, CredentialExchangeConfig, HttpsJwksSource, RootSet,
    StsCredentialIssuer, TrustRoots, lambda_sdk_config,
};
use chime_sync_core::handlers::credential_exchange::{self, CredentialExchange};
use chime_sync_runtime::{
    Incoming, InvocationError, LambdaEvent, emit, exit_code, init_step, run, run_bootstrap,
    service_fn, start, unreadable,
};

fn main() -> ExitCode {
    run_bootstrap(serve())
}

/// Start up, then serve until the Runtime API ends; `Err` is a start-up failure, reported.
async fn serve() -> Result<ExitCode, ExitCode> {
    let config = start(env!("CARGO_BIN_NAME"), CredentialExchangeConfig::from_env).await?;
    // One SSL_CERT_FILE rule for the SDK clients and the JWKS fetch; an issuer can be any
    // public host, so the JWKS fetch trusts Mozilla's roots, the SDK clients AWS's.
    let tls = init_step(
        TrustRoots::from_env().and_then(|roots| rustls_client_config(&roots, RootSet::Web)),
    )
    .await?;
    let sdk = init_step(lambda_sdk_config()).await?;
    let deps = &CredentialExchange {
        allowed_origins: config.allowed_origins.clone(),
        ensure_user: config.ensure_user,
        names: config.display_names.clone(),
        max_session: config.max_session,
        ..CredentialExchange::new(
            ChimeDirectory::new(&sdk, config.chime.clone()),
            ConfiguredLedger::new(&sdk, &config.ledger),
            HttpsJwksSource::new(tls, config.jwks_timeout),
            StsCredentialIssuer::new(&sdk, config.chat_user_role_arn.clone(), config.sts_timeout),
            config.issuers.clone(),
        )
    };
    let served = run(service_fn(move |event: LambdaEvent<Incoming>| async move {
        let payload = event
            .payload
            .json()
            .map_err(|e| unreadable(credential_exchange::METRICS, &e))?;
        let (response, outcome) = credential_exchange::handle(payload, deps).await;
        emit(&credential_exchange::metrics(&outcome, &deps.directory));
        Ok::<_, InvocationError>(response)
    }))
    .await;
    Ok(exit_code(served))
}
