//! The settings a reconcile or restore runs with: the flags, or, with
//! `--stack-name` / `--function-name`, the deployed reconcile function's own
//! ([`crate::deployed`]). Either way one [`Settings`] value, so the rest of
//! a command cannot tell, and cannot mix, where each setting came from.

use std::collections::BTreeSet;

use chime_sync_aws::{ConfiguredLedger, LedgerLocation, ReconcileConfig};
use chime_sync_core::AppInstanceArn;
use chime_sync_core::directory::DeleteMode;
use chime_sync_core::ledger::UnownedPolicy;
use chime_sync_core::planner::DeleteBreaker;

use crate::Failure;
use crate::deployed::{self, DeployedArgs};
use crate::inputs::{
    ChimeArgs, FromFunction, LedgerArgs, Loaded, SourceArgs, TargetArgs, load, open_ledger,
};

/// What the breaker and the deletions are, when given by flags.
pub struct Flags<'a> {
    pub ledger: &'a LedgerArgs,
    pub protected: &'a [String],
    pub breaker: DeleteBreaker,
    pub mode: DeleteMode,
}

impl<'a> Flags<'a> {
    /// The flags of a command that deletes nothing (adopt, restore): the breaker and the
    /// delete mode do not apply, so they are their defaults.
    pub fn without_deletions(ledger: &'a LedgerArgs) -> Self {
        Self {
            ledger,
            protected: &[],
            breaker: DeleteBreaker::default(),
            mode: DeleteMode::Immediate,
        }
    }
}

/// Everything a run decides with.
pub struct Settings {
    pub app_instance: AppInstanceArn,
    pub loaded: Loaded,
    pub ledger: ConfiguredLedger,
    pub unowned: UnownedPolicy,
    pub protected: BTreeSet<String>,
    pub breaker: DeleteBreaker,
    pub mode: DeleteMode,
    /// Where the settings came from, for the summary.
    pub origin: String,
    /// They are the deployed function's, which always plans the deletion of
    /// users missing from the pool (`--delete-missing` is implied).
    pub deployed: bool,
}

/// The settings of the function, when `target.deployed` names one, else the flags'.
pub async fn resolve(
    target: &TargetArgs,
    flags: Flags<'_>,
    complete: bool,
) -> Result<Settings, Failure> {
    let TargetArgs {
        deployed,
        source,
        chime,
        ledger: _,
    } = target;
    match deployed::settings(deployed).await? {
        Some(config) => from_function(deployed, &config, source, chime, flags, complete).await,
        None => from_flags(source, chime, flags, complete).await,
    }
}

async fn from_flags(
    source: &SourceArgs,
    chime: &ChimeArgs,
    flags: Flags<'_>,
    complete: bool,
) -> Result<Settings, Failure> {
    let arn = chime.app_instance_arn.as_deref().ok_or(
        "--app-instance-arn is required (or --stack-name, to take the deployed function's)",
    )?;
    let app_instance =
        AppInstanceArn::parse(arn).map_err(|e| format!("--app-instance-arn: {e}"))?;
    let loaded = load(source, complete, None).await?;
    let (ledger, unowned) = open_ledger(flags.ledger, app_instance.region()).await?;
    let protected = flags
        .protected
        .iter()
        .map(|id| id.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty())
        .collect();
    Ok(Settings {
        app_instance,
        loaded,
        ledger,
        unowned,
        protected,
        breaker: flags.breaker,
        mode: flags.mode,
        origin: "the flags".to_owned(),
        deployed: false,
    })
}

async fn from_function(
    deployed: &DeployedArgs,
    config: &ReconcileConfig,
    source: &SourceArgs,
    chime: &ChimeArgs,
    flags: Flags<'_>,
    complete: bool,
) -> Result<Settings, Failure> {
    if flags.ledger.ledger_table.is_some() || flags.ledger.unowned != "keep" {
        return Err(
            "--stack-name and --function-name take the ledger from the function: pass \
                    no --ledger-table or --unowned"
                .into(),
        );
    }
    if chime.app_instance_arn.is_some() || source.sorts_its_own_users() {
        return Err(
            "--stack-name and --function-name take the AppInstance, the pool and how \
                    its users are sorted from the function: pass no --app-instance-arn, \
                    --active-statuses or --display-name-attributes"
                .into(),
        );
    }
    let function = FromFunction {
        pool: &config.cognito.user_pool_id,
        active: &config.settings.active,
        names: &config.settings.names,
    };
    let loaded = load(source, complete, Some(function)).await?;
    let app_instance = config.chime.app_instance.clone();
    let table = match &config.ledger {
        LedgerLocation::Table(table) => Some(table.clone()),
        LedgerLocation::Memory => None,
    };
    let ledger_args = LedgerArgs {
        ledger_table: table,
        unowned: "keep".to_owned(),
    };
    let (ledger, _) = open_ledger(&ledger_args, app_instance.region()).await?;
    let named = deployed
        .function_name
        .clone()
        .or_else(|| {
            deployed
                .stack_name
                .as_ref()
                .map(|s| format!("the stack {s}"))
        })
        .unwrap_or_default();
    Ok(Settings {
        app_instance,
        loaded,
        ledger,
        unowned: config.settings.unowned.clone(),
        protected: config.settings.protected.clone(),
        breaker: config.settings.breaker,
        mode: config.settings.delete_mode,
        origin: format!("the deployed reconcile function ({named})"),
        deployed: true,
    })
}
