//! `--stack-name` / `--function-name`: the settings of the deployed reconcile
//! function, so that what an operator reviews and releases is what the
//! function plans.
//!
//! The settings are read from the function itself, not retyped: its
//! environment (Lambda `GetFunctionConfiguration`) is parsed by the same
//! code the function parses it with (`ReconcileConfig::from_lookup`), so the
//! pool, the AppInstance, the ledger table, the protected ids, the active
//! statuses, the display-name order, the delete mode and the breaker's limits
//! cannot differ. `--stack-name` finds the function as the stack's
//! `ReconcileFunction` resource (CloudFormation `DescribeStackResource`).
//!
//! Invoking the function in a plan-only mode was the other way: it would
//! plan with the function's own role and code, but a plan of thousands of
//! lines does not fit a Lambda answer (6 MB) without a place to put it, and
//! the review would run under the function's quota share of Cognito rather
//! than the operator's. Reading the settings keeps one planner (the guard in
//! core, which both run) and puts the plan on the operator's terminal.

use std::collections::HashMap;

use aws_sdk_cloudformation::Client as CloudFormation;
use aws_sdk_lambda::Client as Lambda;
use chime_sync_aws::ReconcileConfig;
use clap::Args;

use crate::{Failure, load_sdk_config_in};

/// The logical id of the reconcile function in template.yaml.
pub const RECONCILE_FUNCTION: &str = "ReconcileFunction";

/// Where the deployed settings are.
#[derive(Args, Debug, Default)]
pub struct DeployedArgs {
    /// Take every reconcile setting (pool, AppInstance, ledger, protected ids, statuses,
    /// limits, delete mode) from this stack's reconcile function, as it runs.
    #[arg(long, value_name = "STACK", conflicts_with = "function_name")]
    pub stack_name: Option<String>,
    /// As --stack-name, naming the reconcile function directly.
    #[arg(long, value_name = "NAME")]
    pub function_name: Option<String>,
    /// The Region of the stack or function (default: the AWS configuration's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

impl DeployedArgs {
    pub fn given(&self) -> bool {
        self.stack_name.is_some() || self.function_name.is_some()
    }
}

/// The deployed reconcile function's configuration, when asked for.
pub async fn settings(args: &DeployedArgs) -> Result<Option<ReconcileConfig>, Failure> {
    if !args.given() {
        return match args.region {
            // Silently ignored, it would let an operator believe they looked
            // at another Region.
            Some(_) => Err(
                "--region names the Region of --stack-name or --function-name; \
                            give one of them, or drop --region"
                    .to_owned()
                    .into(),
            ),
            None => Ok(None),
        };
    }
    let sdk = load_sdk_config_in(args.region.as_deref()).await?;
    let function = match (&args.function_name, &args.stack_name) {
        (Some(name), _) => name.clone(),
        (None, Some(stack)) => function_of(&CloudFormation::new(&sdk), stack).await?,
        (None, None) => return Ok(None),
    };
    let environment = environment_of(&Lambda::new(&sdk), &function).await?;
    ReconcileConfig::from_lookup(|name| environment.get(name).cloned())
        .map(Some)
        .map_err(|e| {
            format!("the function {function} is configured in a way this CLI cannot read: {e}")
                .into()
        })
}

async fn function_of(cloudformation: &CloudFormation, stack: &str) -> Result<String, Failure> {
    let answer = cloudformation
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id(RECONCILE_FUNCTION)
        .send()
        .await
        .map_err(|e| Failure {
            line: format!(
                "cannot find the reconcile function of the stack {stack} (is it the stack's \
                 name, in this Region, and may you call cloudformation:DescribeStackResource?)"
            ),
            detail: Some(aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()),
        })?;
    answer
        .stack_resource_detail()
        .and_then(|d| d.physical_resource_id())
        .map(str::to_owned)
        .ok_or_else(|| format!("the stack {stack} has no {RECONCILE_FUNCTION}").into())
}

async fn environment_of(
    lambda: &Lambda,
    function: &str,
) -> Result<HashMap<String, String>, Failure> {
    let answer = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(|e| Failure {
            line: format!(
                "cannot read the configuration of the function {function} (its name, this \
                 Region, and lambda:GetFunctionConfiguration)"
            ),
            detail: Some(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()),
        })?;
    Ok(answer
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default())
}
