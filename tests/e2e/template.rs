//! Static checks of the SAM template (`template.yaml`): least-privilege IAM per
//! function, the queue / dead-letter-queue relations, event source settings,
//! timeouts, Cognito wiring, and that every function's binary exists in the
//! workspace, and that the alarms and the dashboard read the metrics the code
//! publishes (names and namespace from `chime_sync_core::metrics`, each
//! function's from its handler's `METRICS`). `cfn-lint` (run by
//! `scripts/test.sh`) checks the template against
//! the CloudFormation schemas; this file checks what the schemas cannot know.
//!
//! The template is read with its CloudFormation short-form tags (`!Ref`,
//! `!GetAtt`, `!Sub`, `!If`, ...), turned into the long form, and then
//! evaluated symbolically for a *scenario* (a set of parameter values): `Fn::If`
//! follows the template's own `Conditions`, a parameter `Ref` becomes its value,
//! and a resource `Ref` / `Fn::GetAtt` becomes the text `${Name}` /
//! `${Name.Attribute}`. So `!Sub ["${A}/user/*", {A: !If [CreateAppInstance,
//! !GetAtt AppInstance.AppInstanceArn, !Ref ExistingAppInstanceArn]}]` reads
//! `${AppInstance.AppInstanceArn}/user/*` when the stack creates the AppInstance
//! and `arn:aws:chime:...:app-instance/.../user/*` when it is given one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chime_sync_aws::config;
use chime_sync_core::handlers::{
    credential_exchange, idp_sync, post_confirmation, pre_signup, reconcile,
};
use chime_sync_core::metrics::{FUNCTION_DIMENSION, FunctionMetrics, Metric, NAMESPACE};
use serde_json::{Map, Value as Json, json};

// ---------------------------------------------------------------------------
// Loading: YAML with short-form tags -> long-form JSON
// ---------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_template() -> Json {
    let path = root().join("template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).expect("template.yaml is not valid YAML");
    long_form(&yaml)
}

/// `!Ref X` -> `{"Ref": X}`, `!GetAtt A.B` -> `{"Fn::GetAtt": ["A", "B"]}`,
/// `!Condition C` -> `{"Condition": C}`, any other `!Fn` -> `{"Fn::Fn": ...}`.
fn long_form(v: &serde_yaml::Value) -> Json {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Json::Null,
        Y::Bool(b) => Json::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).expect("number"),
        Y::String(s) => Json::String(s.clone()),
        Y::Sequence(items) => Json::Array(items.iter().map(long_form).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).expect("key").trim().to_owned(),
                };
                out.insert(key, long_form(v));
            }
            Json::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = long_form(&t.value);
            match tag {
                "Ref" | "Condition" => json!({ tag: inner }),
                "GetAtt" => {
                    let inner = match inner {
                        Json::String(s) => {
                            let (res, att) = s
                                .split_once('.')
                                .unwrap_or_else(|| panic!("!GetAtt {s} has no attribute"));
                            json!([res, att])
                        }
                        other => other,
                    };
                    json!({ "Fn::GetAtt": inner })
                }
                other => json!({ format!("Fn::{other}"): inner }),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Symbolic evaluation for one scenario
// ---------------------------------------------------------------------------

struct Eval<'a> {
    t: &'a Json,
    params: BTreeMap<&'static str, &'static str>,
}

impl<'a> Eval<'a> {
    fn new(t: &'a Json, params: &[(&'static str, &'static str)]) -> Self {
        let params = params.iter().copied().collect::<BTreeMap<_, _>>();
        let declared = t["Parameters"].as_object().expect("Parameters");
        for name in params.keys() {
            assert!(
                declared.contains_key(*name),
                "scenario sets unknown parameter {name}"
            );
        }
        Eval { t, params }
    }

    fn param(&self, name: &str) -> Option<String> {
        let decl = self.t["Parameters"].get(name)?;
        if let Some(v) = self.params.get(name) {
            return Some((*v).to_owned());
        }
        match decl.get("Default") {
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            Some(other) => panic!("parameter {name}: unexpected Default {other}"),
            None => panic!("parameter {name} has no Default; give it a value in the scenario"),
        }
    }

    fn condition(&self, name: &str) -> bool {
        let c = self.t["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("unknown condition {name}"));
        self.truth(c)
    }

    fn truth(&self, c: &Json) -> bool {
        let (f, args) = single_key(c).unwrap_or_else(|| panic!("not a condition function: {c}"));
        match f {
            "Condition" => self.condition(args.as_str().expect("condition name")),
            "Fn::Equals" => {
                let a = args.as_array().expect("Fn::Equals args");
                self.eval(&a[0]) == self.eval(&a[1])
            }
            "Fn::Not" => !self.truth(&args[0]),
            "Fn::And" => args
                .as_array()
                .expect("Fn::And")
                .iter()
                .all(|a| self.truth(a)),
            "Fn::Or" => args
                .as_array()
                .expect("Fn::Or")
                .iter()
                .any(|a| self.truth(a)),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// A resource of the template, or one SAM generates for it (a function's
    /// execution role, `{Function}Role`).
    fn is_resource(&self, name: &str) -> bool {
        self.t["Resources"].get(name).is_some()
            || name
                .strip_suffix("Role")
                .is_some_and(|f| self.t["Resources"][f]["Type"] == "AWS::Serverless::Function")
    }

    /// Resolves intrinsics; `None` is `AWS::NoValue` (dropped from lists and maps).
    fn eval(&self, v: &Json) -> Option<Json> {
        if let Some((f, args)) = single_key(v)
            && (f == "Ref" || f.starts_with("Fn::"))
        {
            return self.intrinsic(f, args);
        }
        Some(match v {
            Json::Array(items) => Json::Array(items.iter().filter_map(|i| self.eval(i)).collect()),
            Json::Object(m) => Json::Object(
                m.iter()
                    .filter_map(|(k, v)| self.eval(v).map(|v| (k.clone(), v)))
                    .collect(),
            ),
            other => other.clone(),
        })
    }

    fn intrinsic(&self, f: &str, args: &Json) -> Option<Json> {
        match f {
            "Ref" => {
                let name = args.as_str().expect("Ref name");
                if name == "AWS::NoValue" {
                    None
                } else if let Some(v) = self.param(name) {
                    Some(Json::String(v))
                } else {
                    assert!(
                        self.is_resource(name) || name.starts_with("AWS::"),
                        "Ref to unknown name {name}"
                    );
                    Some(Json::String(format!("${{{name}}}")))
                }
            }
            "Fn::GetAtt" => {
                let a = args.as_array().expect("GetAtt args");
                let (res, att) = (a[0].as_str().expect("res"), a[1].as_str().expect("att"));
                assert!(self.is_resource(res), "GetAtt of unknown resource {res}");
                Some(Json::String(format!("${{{res}.{att}}}")))
            }
            "Fn::If" => {
                let a = args.as_array().expect("If args");
                let cond = a[0].as_str().expect("If condition");
                self.eval(if self.condition(cond) { &a[1] } else { &a[2] })
            }
            "Fn::Sub" => {
                let (text, vars) = match args {
                    Json::String(s) => (s.as_str(), Map::new()),
                    Json::Array(a) => (
                        a[0].as_str().expect("Sub template"),
                        a[1].as_object().expect("Sub vars").clone(),
                    ),
                    other => panic!("bad Fn::Sub {other}"),
                };
                Some(Json::String(self.sub(text, &vars)))
            }
            "Fn::Join" => {
                let a = args.as_array().expect("Join args");
                let sep = a[0].as_str().expect("Join separator");
                let parts = self.eval(&a[1]).expect("Join list");
                let parts = parts.as_array().expect("Join list").iter();
                Some(Json::String(
                    parts
                        .map(|p| p.as_str().expect("Join item").to_owned())
                        .collect::<Vec<_>>()
                        .join(sep),
                ))
            }
            other => panic!("unsupported intrinsic {other} in {args}"),
        }
    }

    fn sub(&self, text: &str, vars: &Map<String, Json>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("unclosed ${ in Fn::Sub") + start;
            let name = &rest[start + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                let v = self.eval(v).expect("Sub variable is NoValue");
                out.push_str(v.as_str().expect("Sub variable is not a string"));
            } else if let Some(p) = self.param(name) {
                out.push_str(&p);
            } else {
                let (res, _) = name.split_once('.').unwrap_or((name, ""));
                assert!(
                    self.is_resource(res) || name.starts_with("AWS::"),
                    "Fn::Sub names unknown {name}"
                );
                out.push_str(&format!("${{{name}}}"));
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn single_key(v: &Json) -> Option<(&str, &Json)> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    m.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .unwrap_or_else(|| panic!("expected a string, got {x}"))
                    .to_owned()
            })
            .collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

// ---------------------------------------------------------------------------
// The template model the tests work on
// ---------------------------------------------------------------------------

const PRE_SIGNUP: &str = "pre-signup";
const POST_CONFIRMATION: &str = "post-confirmation";
const IDP_SYNC: &str = "idp-sync";
const CREDENTIAL_EXCHANGE: &str = "credential-exchange";
const RECONCILE: &str = "reconcile";
const BINARIES: [&str; 5] = [
    PRE_SIGNUP,
    POST_CONFIRMATION,
    IDP_SYNC,
    CREDENTIAL_EXCHANGE,
    RECONCILE,
];

const EXISTING_APP_INSTANCE: &str =
    "arn:aws:chime:us-east-1:111122223333:app-instance/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
const EXISTING_POOL: &str = "us-east-1_AbCdEf123";

/// Parameter values of a scenario.
type Params = Vec<(&'static str, &'static str)>;

/// (name, parameter values, AppInstance ARN the functions must be scoped to)
fn scenarios() -> Vec<(&'static str, Params, String)> {
    vec![
        (
            "stack creates AppInstance and pool",
            vec![],
            "${AppInstance.AppInstanceArn}".to_owned(),
        ),
        (
            "existing AppInstance and pool",
            vec![
                ("ExistingAppInstanceArn", EXISTING_APP_INSTANCE),
                ("ExistingUserPoolId", EXISTING_POOL),
            ],
            EXISTING_APP_INSTANCE.to_owned(),
        ),
    ]
}

fn resources(t: &Json) -> &Map<String, Json> {
    t["Resources"].as_object().expect("Resources")
}

fn of_type<'t>(t: &'t Json, ty: &str) -> Vec<(&'t String, &'t Json)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

/// The template's only resource of type `ty`: its logical id and the resource.
fn only_of_type<'t>(t: &'t Json, ty: &str) -> (&'t String, &'t Json) {
    let found = of_type(t, ty);
    assert_eq!(found.len(), 1, "exactly one {ty}");
    found[0]
}

/// Each resource of type `ty` with its `Properties` evaluated.
fn evaluated<'t>(t: &'t Json, ev: &Eval, ty: &str) -> Vec<(&'t String, Json)> {
    of_type(t, ty)
        .into_iter()
        .map(|(id, r)| {
            let p = ev.eval(&r["Properties"]);
            (id, p.unwrap_or_else(|| panic!("{ty} {id}: Properties")))
        })
        .collect()
}

/// The user pool's ARN as the template names it: the stack's own pool, or (with parameters)
/// the existing one they name.
fn user_pool_arn(params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        "${UserPool.Arn}".to_owned()
    } else {
        format!(
            "arn:${{AWS::Partition}}:cognito-idp:${{AWS::Region}}:${{AWS::AccountId}}:userpool/{EXISTING_POOL}"
        )
    }
}

/// Logical id of the function whose `BuildProperties.Binary` is `binary`.
fn function_id<'t>(t: &'t Json, binary: &str) -> &'t String {
    let found: Vec<_> = of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one function must build binary {binary}"
    );
    found[0].0
}

fn function<'t>(t: &'t Json, binary: &str) -> &'t Json {
    &resources(t)[function_id(t, binary)]
}

/// Function property, falling back to `Globals.Function`.
fn fn_prop<'t>(t: &'t Json, binary: &str, prop: &str) -> &'t Json {
    let own = &function(t, binary)["Properties"][prop];
    if own.is_null() {
        &t["Globals"]["Function"][prop]
    } else {
        own
    }
}

fn as_u64(v: &Json, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} must be a literal integer, got {v}"))
}

/// Action -> resources granted, for one function in one scenario.
fn grants(t: &Json, ev: &Eval, binary: &str) -> BTreeMap<String, BTreeSet<String>> {
    let f = function(t, binary);
    let props = &f["Properties"];
    assert!(
        props.get("Role").is_none(),
        "{binary}: a Role property hides the policies from this test"
    );
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut policies: Vec<Json> = match props.get("Policies") {
        None => Vec::new(),
        Some(p) => p
            .as_array()
            .unwrap_or_else(|| panic!("{binary}: Policies must be a list"))
            .clone(),
    };
    // Inline policies attached to the function's SAM-generated role from outside.
    let role = format!("${{{}Role}}", function_id(t, binary));
    for (_, p) in of_type(t, "AWS::IAM::RolePolicy") {
        if ev.eval(&p["Properties"]["RoleName"]) == Some(json!(role)) {
            policies.push(p["Properties"]["PolicyDocument"].clone());
        }
    }
    for policy in &policies {
        let doc = policy.as_object().unwrap_or_else(|| {
            panic!("{binary}: managed policy {policy} (only inline statements can be checked)")
        });
        assert!(
            doc.contains_key("Statement"),
            "{binary}: SAM policy template {policy} (grants are not visible here; write the statement)"
        );
        let stmts = ev.eval(&doc["Statement"]).expect("Statement");
        let stmts = match stmts {
            Json::Array(a) => a,
            one => vec![one],
        };
        for s in stmts {
            assert_eq!(
                s["Effect"], "Allow",
                "{binary}: only Allow statements expected: {s}"
            );
            assert!(
                s.get("NotAction").is_none() && s.get("NotResource").is_none(),
                "{binary}: {s}"
            );
            assert!(
                s.get("Condition").is_none(),
                "{binary}: conditions are not modelled here: {s}"
            );
            let resources = strings(&s["Resource"]);
            for action in strings(&s["Action"]) {
                let service = action
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                assert!(!action.contains('*'), "{binary}: wildcard action {action}");
                if service == "chime" || service == "sqs" {
                    for r in &resources {
                        assert!(r != "*" && !r.ends_with(":*"), "{binary}: {action} on {r}");
                    }
                }
                out.entry(action)
                    .or_default()
                    .extend(resources.iter().cloned());
            }
        }
    }
    out
}

fn expect(pairs: &[(&[&str], &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (actions, res) in pairs {
        for a in *actions {
            out.entry((*a).to_owned())
                .or_default()
                .extend(res.iter().map(|r| (*r).to_owned()));
        }
    }
    out
}

/// The one event source mapping feeding `binary`; SAM `Events` of type SQS are refused
/// (SAM attaches AWSLambdaSQSQueueExecutionRole to them, whose SQS actions are on "*").
fn mapping<'t>(t: &'t Json, ev: &Eval, binary: &str) -> &'t Json {
    let id = function_id(t, binary);
    if let Some(events) = function(t, binary)["Properties"]
        .get("Events")
        .and_then(Json::as_object)
    {
        for (name, e) in events {
            assert_ne!(
                e["Type"], "SQS",
                "{binary}: SAM SQS event {name} grants SQS on \"*\""
            );
        }
    }
    let maps: Vec<_> = of_type(t, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .filter(|(_, m)| {
            ev.eval(&m["Properties"]["FunctionName"]) == Some(json!(format!("${{{id}}}")))
        })
        .collect();
    assert_eq!(
        maps.len(),
        1,
        "{binary} must have exactly one event source mapping"
    );
    &maps[0].1["Properties"]
}

/// `${Name.Arn}` or `${Name}` -> `Name`.
fn resource_name(symbol: &str) -> &str {
    let inner = symbol
        .strip_prefix("${")
        .and_then(|s| s.strip_suffix('}'))
        .expect("symbolic reference");
    inner.split('.').next().expect("name")
}

fn env(t: &Json, ev: &Eval, binary: &str) -> Map<String, Json> {
    let vars = &function(t, binary)["Properties"]["Environment"]["Variables"];
    ev.eval(vars)
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn each_function_gets_exactly_the_actions_it_calls_on_its_own_resources() {
    let t = load_template();
    for (scenario, params, app) in scenarios() {
        let ev = Eval::new(&t, &params);
        let users = format!("{app}/user/*");
        let (app, users) = (app.as_str(), users.as_str());

        assert_eq!(
            grants(&t, &ev, PRE_SIGNUP),
            expect(&[]),
            "[{scenario}] pre-signup calls no AWS API"
        );

        assert_eq!(
            grants(&t, &ev, POST_CONFIRMATION),
            expect(&[
                (&["chime:CreateAppInstanceUser"], &[app, users]),
                (
                    &[
                        "chime:DescribeAppInstanceUser",
                        "chime:UpdateAppInstanceUser"
                    ],
                    &[users]
                ),
                (&["sqs:SendMessage"], &["${SyncQueue.Arn}"]),
                (&["dynamodb:UpdateItem"], &["${LedgerTable.Arn}"]),
            ]),
            "[{scenario}] post-confirmation"
        );

        assert_eq!(
            grants(&t, &ev, IDP_SYNC),
            expect(&[
                (&["chime:CreateAppInstanceUser"], &[app, users]),
                (
                    &[
                        "chime:DescribeAppInstanceUser",
                        "chime:UpdateAppInstanceUser",
                        // DeleteMode grace (the default): deletions by expiration, never
                        // DeleteAppInstanceUser.
                        "chime:PutAppInstanceUserExpirationSettings"
                    ],
                    &[users],
                ),
                (&["sqs:SendMessage"], &["${DeadLetterQueue.Arn}"]),
                (
                    &[
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility"
                    ],
                    &["${SyncQueue.Arn}"],
                ),
                (
                    &["dynamodb:UpdateItem", "dynamodb:GetItem"],
                    &["${LedgerTable.Arn}"]
                ),
            ]),
            "[{scenario}] idp-sync"
        );

        let pool = user_pool_arn(&params);
        assert_eq!(
            grants(&t, &ev, RECONCILE),
            expect(&[
                (&["cognito-idp:ListUsers"], &[pool.as_str()]),
                (&["chime:ListAppInstanceUsers"], &[app]),
                // Deletion candidates are described: under way, or made after the cycle began.
                (&["chime:DescribeAppInstanceUser"], &[users]),
                (&["sqs:SendMessage"], &["${SyncQueue.Arn}"]),
                (
                    &["dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
                    &["${LedgerTable.Arn}"]
                ),
                (&["dynamodb:Query"], &["${LedgerTable.Arn}/index/deletions"]),
            ]),
            "[{scenario}] reconcile reads the pool, Chime and the ledger, and writes Chime nothing"
        );

        assert_eq!(
            grants(&t, &ev, CREDENTIAL_EXCHANGE),
            expect(&[
                (&["chime:CreateAppInstanceUser"], &[app, users]),
                (&["chime:DescribeAppInstanceUser"], &[users]),
                // Grace mode: a sign-in through the owning issuer cancels a pending deletion.
                (&["chime:PutAppInstanceUserExpirationSettings"], &[users]),
                (
                    &["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                    &["${ChatUserRole.Arn}"]
                ),
                (
                    &["dynamodb:UpdateItem", "dynamodb:BatchGetItem"],
                    &["${LedgerTable.Arn}"]
                ),
            ]),
            "[{scenario}] credential-exchange"
        );
    }
}

/// DeleteMode immediate: idp-sync deletes and never sets expirations; nothing else changes.
#[test]
fn immediate_deletions_grant_delete_and_nothing_for_expirations() {
    let t = load_template();
    let ev = Eval::new(&t, &[("DeleteMode", "immediate")]);
    let app = "${AppInstance.AppInstanceArn}";
    let users = "${AppInstance.AppInstanceArn}/user/*";
    let sync = grants(&t, &ev, IDP_SYNC);
    assert_eq!(
        sync["chime:DeleteAppInstanceUser"],
        BTreeSet::from([users.to_owned()])
    );
    assert!(!sync.contains_key("chime:PutAppInstanceUserExpirationSettings"));
    assert_eq!(
        grants(&t, &ev, RECONCILE),
        expect(&[
            (&["cognito-idp:ListUsers"], &["${UserPool.Arn}"]),
            (&["chime:ListAppInstanceUsers"], &[app]),
            (&["chime:DescribeAppInstanceUser"], &[users]),
            (&["sqs:SendMessage"], &["${SyncQueue.Arn}"]),
            (
                &["dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
                &["${LedgerTable.Arn}"]
            ),
            (&["dynamodb:Query"], &["${LedgerTable.Arn}/index/deletions"]),
        ])
    );
    assert!(
        !grants(&t, &ev, CREDENTIAL_EXCHANGE)
            .contains_key("chime:PutAppInstanceUserExpirationSettings"),
        "no grace deletions to cancel"
    );
}

/// A schedule starts a state machine that only invokes the reconcile function, again while
/// it answers `done: false`; the breaker's metric, as the code emits it, has an alarm.
#[test]
fn reconcile_runs_on_a_schedule_until_done_and_its_breaker_alarms() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let machine = &ev
        .eval(&only_of_type(&t, "AWS::Serverless::StateMachine").1["Properties"])
        .expect("state machine");
    let arn = format!("${{{}.Arn}}", function_id(&t, RECONCILE));
    assert_eq!(
        machine["DefinitionSubstitutions"]["ReconcileFunctionArn"],
        json!(arn)
    );
    let statements = machine["Policies"][0]["Statement"]
        .as_array()
        .expect("inline statements");
    assert_eq!(
        statements.len(),
        1,
        "the state machine may only invoke reconcile"
    );
    assert_eq!(statements[0]["Action"], "lambda:InvokeFunction");
    assert_eq!(statements[0]["Resource"], json!(arn));
    let states = &machine["Definition"]["States"];
    let task = &states[machine["Definition"]["StartAt"].as_str().expect("StartAt")];
    assert_eq!(
        task["Parameters"]["FunctionName"],
        "${ReconcileFunctionArn}"
    );
    assert_eq!(
        task["Parameters"]["Payload.$"], "$",
        "the continuation goes back in"
    );
    assert_eq!(task["OutputPath"], "$.Payload");
    let choice = &states[task["Next"].as_str().expect("Next")];
    assert_eq!(choice["Choices"][0]["Variable"], "$.done");
    assert_eq!(choice["Choices"][0]["BooleanEquals"], false);
    assert_eq!(
        choice["Choices"][0]["Next"],
        machine["Definition"]["StartAt"]
    );
    let schedule = &machine["Events"]["Schedule"];
    assert_eq!(schedule["Type"], "Schedule");
    assert_eq!(schedule["Properties"]["Schedule"], "rate(30 minutes)");
    assert_eq!(t["Parameters"]["ReconcileScheduleMinutes"]["Default"], 30);

    let timeout = as_u64(fn_prop(&t, RECONCILE, "Timeout"), "Timeout");
    assert_eq!(timeout, config::RECONCILE_TIMEOUT.as_secs());
    assert_eq!(
        function(&t, RECONCILE)["Properties"]["ReservedConcurrentExecutions"],
        1,
        "one cycle at a time: each takes its share of the ListUsers quota"
    );

    // One alarm watches both breakers' metric, as the code emits it: the reconcile
    // function's and the feed's (idp-sync), summed.
    let watched = |p: &Json, binary: &str| {
        p["Metrics"].as_array().into_iter().flatten().any(|m| {
            let metric = &m["MetricStat"]["Metric"];
            metric["Namespace"] == NAMESPACE
                && metric["MetricName"] == Metric::DeletionsWithheld.name()
                && metric["Dimensions"]
                    == json!([{"Name": FUNCTION_DIMENSION, "Value": format!("${{{}}}", function_id(&t, binary))}])
                && m["MetricStat"]["Stat"] == "Sum"
        })
    };
    let alarmed = evaluated(&t, &ev, "AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, p)| watched(p, RECONCILE) && watched(p, IDP_SYNC) && p["Threshold"] == 1);
    assert!(
        alarmed,
        "an alarm on both breakers' metric, as the code emits it"
    );
}

#[test]
fn functions_are_configured_by_the_environment_contract() {
    let t = load_template();
    for (scenario, params, app) in scenarios() {
        let ev = Eval::new(&t, &params);
        let names = |binary| {
            env(&t, &ev, binary)
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>()
        };
        let set = |names: &[&str]| {
            names
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>()
        };

        assert_eq!(
            names(PRE_SIGNUP),
            set(&[
                "ALLOWED_EMAIL_DOMAINS",
                "AUTO_CONFIRM",
                "AUTO_VERIFY_EMAIL",
                "DISPLAY_NAME_ATTRIBUTES",
                "RUST_LOG"
            ]),
            "[{scenario}]"
        );
        assert_eq!(
            names(POST_CONFIRMATION),
            set(&[
                "APP_INSTANCE_ARN",
                "SYNC_QUEUE_URL",
                "CHIME_BUDGET_MS",
                "DISPLAY_NAME_ATTRIBUTES",
                "LEDGER_TABLE",
                "RUST_LOG"
            ]),
            "[{scenario}]"
        );
        assert_eq!(
            names(IDP_SYNC),
            set(&[
                "APP_INSTANCE_ARN",
                "DLQ_URL",
                "MAX_CONCURRENT_GROUPS",
                "DELETE_MODE",
                "DELETE_GRACE_DAYS",
                "UNOWNED_USERS",
                "FEED_DELETE_LIMIT",
                "FEED_DELETE_LIMIT_PERCENT",
                "FEED_DELETE_WINDOW_MINUTES",
                "LEDGER_TABLE",
                "RUST_LOG"
            ]),
            "[{scenario}]"
        );
        assert_eq!(
            names(RECONCILE),
            set(&[
                "APP_INSTANCE_ARN",
                "USER_POOL_ID",
                "SYNC_QUEUE_URL",
                "ACTIVE_USER_STATUSES",
                "PROTECTED_USER_IDS",
                "DELETE_LIMIT",
                "DELETE_LIMIT_PERCENT",
                "DELETE_MODE",
                "DELETE_GRACE_DAYS",
                "COGNITO_QUOTA_SHARE_PERCENT",
                "RECONCILE_SHARDS",
                "DISPLAY_NAME_ATTRIBUTES",
                "UNOWNED_USERS",
                "LEDGER_TABLE",
                "RUST_LOG"
            ]),
            "[{scenario}]"
        );
        let reconcile = env(&t, &ev, RECONCILE);
        assert_eq!(reconcile["APP_INSTANCE_ARN"], json!(app), "[{scenario}]");
        assert_eq!(
            reconcile["SYNC_QUEUE_URL"],
            json!("${SyncQueue}"),
            "[{scenario}]"
        );
        assert_eq!(
            reconcile["USER_POOL_ID"],
            json!(if params.is_empty() {
                "${UserPool}"
            } else {
                EXISTING_POOL
            }),
            "[{scenario}]"
        );

        assert_eq!(
            names(CREDENTIAL_EXCHANGE),
            set(&[
                "APP_INSTANCE_ARN",
                "TRUSTED_ISSUERS",
                "CHAT_USER_ROLE_ARN",
                "ALLOWED_ORIGINS",
                "ENSURE_CHIME_USER",
                "MAX_SESSION_SECONDS",
                "DISPLAY_NAME_ATTRIBUTES",
                "LEDGER_TABLE",
                "RUST_LOG"
            ])
            .into_iter()
            // With an existing pool and no TrustedIssuers there is nothing to default to:
            // the function then stops at start-up naming TRUSTED_ISSUERS.
            .filter(|n| n != "TRUSTED_ISSUERS" || params.is_empty())
            .collect(),
            "[{scenario}]"
        );
        let exchange = env(&t, &ev, CREDENTIAL_EXCHANGE);
        assert_eq!(exchange["APP_INSTANCE_ARN"], json!(app), "[{scenario}]");
        assert_eq!(
            exchange["CHAT_USER_ROLE_ARN"],
            json!("${ChatUserRole.Arn}"),
            "[{scenario}]"
        );
        if params.is_empty() {
            assert_eq!(
                exchange["TRUSTED_ISSUERS"],
                json!(
                    r#"{"https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}": {"audiences": ["${UserPoolClient}"], "tokenUse": "id", "key": "pool", "source": "pool"}}"#
                ),
                "the created pool's ID tokens, for its app client"
            );
        }

        let post = env(&t, &ev, POST_CONFIRMATION);
        let sync = env(&t, &ev, IDP_SYNC);
        assert_eq!(post["APP_INSTANCE_ARN"], json!(app), "[{scenario}]");
        assert_eq!(sync["APP_INSTANCE_ARN"], json!(app), "[{scenario}]");
        // The hand-off goes to the queue idp-sync reads; idp-sync forwards poison to that
        // queue's own dead-letter queue.
        assert_eq!(
            post["SYNC_QUEUE_URL"],
            json!("${SyncQueue}"),
            "[{scenario}]"
        );
        assert_eq!(sync["DLQ_URL"], json!("${DeadLetterQueue}"), "[{scenario}]");

        for binary in BINARIES {
            let logging = &function(&t, binary)["Properties"]["LoggingConfig"];
            assert_eq!(
                logging["LogFormat"], "JSON",
                "{binary}: JSON logs (AWS_LAMBDA_LOG_FORMAT=JSON)"
            );
            let group = ev.eval(&logging["LogGroup"]).expect("LogGroup");
            let group = &resources(&t)[resource_name(group.as_str().expect("LogGroup ref"))];
            assert_eq!(
                group["Type"], "AWS::Logs::LogGroup",
                "{binary}: explicit log group"
            );
            assert!(
                group["Properties"].get("RetentionInDays").is_some(),
                "{binary}: log retention"
            );
        }
    }
}

#[test]
fn sync_queue_feeds_idp_sync_with_a_fifo_dead_letter_queue() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let m = mapping(&t, &ev, IDP_SYNC);

    assert_eq!(
        m["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let batch = as_u64(&m["BatchSize"], "BatchSize");
    assert!(
        (1..=10).contains(&batch),
        "BatchSize {batch} must be 1..=10 (FIFO maximum)"
    );
    assert!(
        m["ScalingConfig"].get("MaximumConcurrency").is_some(),
        "set a maximum concurrency"
    );

    let source = ev.eval(&m["EventSourceArn"]).expect("EventSourceArn");
    let queue_id = resource_name(source.as_str().expect("queue ARN"));
    assert_eq!(source, json!(format!("${{{queue_id}.Arn}}")));
    let queue = &resources(&t)[queue_id];
    assert_eq!(queue["Type"], "AWS::SQS::Queue");
    let q = &queue["Properties"];
    assert_eq!(
        q["FifoQueue"], true,
        "sync queue must be FIFO (per-sub ordering)"
    );
    assert_eq!(
        q["ContentBasedDeduplication"], false,
        "producers set deduplication ids"
    );
    assert_eq!(
        queue_id, "SyncQueue",
        "post-confirmation and the policies name SyncQueue"
    );

    let timeout = as_u64(
        &function(&t, IDP_SYNC)["Properties"]["Timeout"],
        "idp-sync Timeout",
    );
    let visibility = as_u64(&q["VisibilityTimeout"], "VisibilityTimeout");
    assert!(
        visibility >= 6 * timeout,
        "visibility timeout {visibility} s < 6 x idp-sync timeout {timeout} s"
    );

    let redrive = &q["RedrivePolicy"];
    let dlq = ev
        .eval(&redrive["deadLetterTargetArn"])
        .expect("deadLetterTargetArn");
    let dlq_id = resource_name(dlq.as_str().expect("DLQ ARN"));
    assert_eq!(dlq, json!(format!("${{{dlq_id}.Arn}}")));
    let dlq_res = &resources(&t)[dlq_id];
    assert_eq!(dlq_res["Type"], "AWS::SQS::Queue");
    assert_eq!(
        dlq_res["Properties"]["FifoQueue"], true,
        "a FIFO queue needs a FIFO dead-letter queue"
    );
    assert_eq!(dlq_id, "DeadLetterQueue");

    // maxReceiveCount >= 5: a literal, or a parameter whose Default and MinValue are >= 5.
    match (
        &redrive["maxReceiveCount"],
        single_key(&redrive["maxReceiveCount"]),
    ) {
        (_, Some(("Ref", name))) => {
            let p = &t["Parameters"][name.as_str().expect("param")];
            assert!(
                as_u64(&p["Default"], "maxReceiveCount default") >= 5,
                "default maxReceiveCount < 5"
            );
            assert!(
                as_u64(&p["MinValue"], "maxReceiveCount MinValue") >= 5,
                "maxReceiveCount may be set < 5"
            );
        }
        (literal, _) => assert!(
            as_u64(literal, "maxReceiveCount") >= 5,
            "maxReceiveCount < 5"
        ),
    }

    for id in [queue_id, dlq_id] {
        let p = &resources(&t)[id]["Properties"];
        assert!(
            p["SqsManagedSseEnabled"] == true || p.get("KmsMasterKeyId").is_some(),
            "{id}: server-side encryption"
        );
    }

    let alarmed = evaluated(&t, &ev, "AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, p)| {
            p["Namespace"] == "AWS/SQS"
                && p["MetricName"] == "ApproximateNumberOfMessagesVisible"
                && p["Dimensions"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| d["Value"] == json!(format!("${{{dlq_id}.QueueName}}")))
                })
        });
    assert!(alarmed, "an alarm on the dead-letter queue's depth");
}

#[test]
fn cognito_triggers_answer_well_within_cognitos_five_seconds() {
    let t = load_template();
    for binary in [PRE_SIGNUP, POST_CONFIRMATION] {
        let timeout = as_u64(fn_prop(&t, binary, "Timeout"), "Timeout");
        assert!(
            timeout <= 4,
            "{binary}: Timeout {timeout} s; Cognito gives up after 5 s"
        );
    }
    // post-confirmation must have time left for the queue hand-off after its Chime budget.
    let timeout_ms = 1000 * as_u64(fn_prop(&t, POST_CONFIRMATION, "Timeout"), "Timeout");
    let budget = &function(&t, POST_CONFIRMATION)["Properties"]["Environment"]["Variables"]["CHIME_BUDGET_MS"];
    let max_budget = match single_key(budget) {
        Some(("Ref", name)) => as_u64(
            &t["Parameters"][name.as_str().expect("param")]["MaxValue"],
            "MaxValue",
        ),
        _ => budget
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("CHIME_BUDGET_MS literal"),
    };
    // The code's figures: the hand-off reserve and the slack for the rest of the invocation.
    let reserve = config::POST_CONFIRMATION_QUEUE_TIMEOUT.as_millis() as u64;
    let slack = config::POST_CONFIRMATION_SLACK.as_millis() as u64;
    assert!(
        max_budget + reserve + slack <= timeout_ms,
        "CHIME_BUDGET_MS may reach {max_budget} ms with a {timeout_ms} ms timeout: keep \
         {reserve} ms for the hand-off and {slack} ms for the rest"
    );
    assert_eq!(
        timeout_ms,
        config::POST_CONFIRMATION_TIMEOUT.as_millis() as u64,
        "post-confirmation's Timeout is the one its configuration budgets for"
    );
}

/// Whether a template rule lets a stack with `ev`'s parameters be created:
/// its `RuleCondition` does not hold, or every `Assert` does.
fn rule_allows(ev: &Eval, rule: &Json) -> bool {
    let applies = rule.get("RuleCondition").is_none_or(|c| ev.truth(c));
    let assertions = rule["Assertions"].as_array().expect("Assertions");
    !applies || assertions.iter().all(|a| ev.truth(&a["Assert"]))
}

/// AllowedEmailDomains checks an address only the confirmation code proves,
/// and AutoConfirm skips that code: the rule refuses the pair before a
/// deployment, and pre-signup, given the environment the template passes it,
/// refuses exactly the same stacks at start-up.
#[test]
fn auto_confirm_with_allowed_email_domains_is_refused_by_the_template_and_the_function() {
    let t = load_template();
    let rule = &t["Rules"]["EmailDomainsNeedConfirmation"];
    let domains = ("AllowedEmailDomains", "corp.com");
    let cases: [(Params, bool); 6] = [
        (vec![], true),
        (
            vec![("AutoConfirm", "true"), ("AutoVerifyEmail", "true")],
            true,
        ),
        (vec![domains], true),
        (vec![domains, ("AutoVerifyEmail", "true")], true),
        (vec![domains, ("AutoConfirm", "true")], false),
        (
            vec![
                domains,
                ("AutoConfirm", "true"),
                ("AutoVerifyEmail", "true"),
            ],
            false,
        ),
    ];
    for (params, allowed) in cases {
        let ev = Eval::new(&t, &params);
        assert_eq!(rule_allows(&ev, rule), allowed, "rule, {params:?}");
        let vars = env(&t, &ev, PRE_SIGNUP);
        let started = config::PreSignupConfig::from_lookup(|name| {
            vars.get(name).and_then(Json::as_str).map(str::to_owned)
        });
        assert_eq!(
            started.is_ok(),
            allowed,
            "pre-signup, {params:?}: {started:?}"
        );
    }
    let said: Vec<&str> = rule["Assertions"]
        .as_array()
        .expect("Assertions")
        .iter()
        .map(|a| a["AssertDescription"].as_str().expect("AssertDescription"))
        .collect();
    for text in said {
        for name in ["AutoConfirm", "AllowedEmailDomains", "proves"] {
            assert!(text.contains(name), "{text:?} should say {name:?}");
        }
    }
}

#[test]
fn cognito_may_invoke_the_triggers_only_from_one_user_pool() {
    let t = load_template();
    for (scenario, params, _) in scenarios() {
        let ev = Eval::new(&t, &params);
        let pool = user_pool_arn(&params);
        for binary in [PRE_SIGNUP, POST_CONFIRMATION] {
            let id = function_id(&t, binary);
            let perms: Vec<_> = evaluated(&t, &ev, "AWS::Lambda::Permission")
                .into_iter()
                .map(|(_, p)| p)
                .filter(|p| {
                    p["FunctionName"] == json!(format!("${{{id}.Arn}}"))
                        || p["FunctionName"] == json!(format!("${{{id}}}"))
                })
                .collect();
            assert_eq!(
                perms.len(),
                1,
                "[{scenario}] {binary}: one invoke permission"
            );
            let p = &perms[0];
            assert_eq!(
                p["Principal"], "cognito-idp.amazonaws.com",
                "[{scenario}] {binary}"
            );
            assert_eq!(
                p["Action"], "lambda:InvokeFunction",
                "[{scenario}] {binary}"
            );
            assert_eq!(
                p["SourceArn"],
                json!(pool),
                "[{scenario}] {binary}: scoped to one pool, no wildcard"
            );
        }
    }
    let ev = Eval::new(&t, &[]);
    let pool = ev
        .eval(&resources(&t)["UserPool"]["Properties"])
        .expect("UserPool");
    let lambda = &pool["LambdaConfig"];
    assert_eq!(
        lambda["PreSignUp"],
        json!(format!("${{{}.Arn}}", function_id(&t, PRE_SIGNUP)))
    );
    assert_eq!(
        lambda["PostConfirmation"],
        json!(format!("${{{}.Arn}}", function_id(&t, POST_CONFIRMATION)))
    );
}

#[test]
fn every_function_builds_a_binary_of_this_workspace() {
    let t = load_template();
    let workspace: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml"))
            .expect("root Cargo.toml");
    let default_members: Vec<String> = workspace["workspace"]
        .get("default-members")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();

    // `cargo lambda build --release` adds `--config profile.release.panic="abort"` unless the
    // release profile sets `panic` itself; lambda_runtime needs unwinding to report a handler
    // panic as an invocation error.
    assert_eq!(
        workspace["profile"]["release"]
            .get("panic")
            .and_then(|p| p.as_str()),
        Some("unwind"),
        "[profile.release] must spell out panic = \"unwind\" (cargo-lambda defaults to abort)"
    );

    let mut built = BTreeSet::new();
    for (id, f) in of_type(&t, "AWS::Serverless::Function") {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{id}");
        // SAM's cargo-lambda builder copies target/lambda/<Binary>/bootstrap from CodeUri, and
        // cargo writes every member's binaries to the workspace root's target/.
        assert_eq!(
            f["Properties"]["CodeUri"], ".",
            "{id}: CodeUri must be the workspace root"
        );
        assert_eq!(fn_prop(&t, id_binary(f), "Handler"), "bootstrap", "{id}");
        assert_eq!(
            fn_prop(&t, id_binary(f), "Runtime"),
            "provided.al2023",
            "{id}"
        );
        built.insert(id_binary(f).to_owned());
    }
    let expected: BTreeSet<String> = BINARIES.iter().map(|b| (*b).to_owned()).collect();
    assert_eq!(
        built, expected,
        "the template deploys exactly the four functions"
    );

    for binary in BINARIES {
        let dir = Path::new("crates").join(binary);
        let manifest = root().join(&dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
            panic!(
                "template builds `{binary}` but {} is missing: {e}",
                manifest.display()
            )
        });
        let pkg: toml::Table = toml::from_str(&text).expect("crate Cargo.toml");
        assert_eq!(
            pkg["package"]["name"].as_str(),
            Some(binary),
            "{}: package name",
            manifest.display()
        );
        // The package's default binary (src/main.rs) is named after the package; an explicit
        // [[bin]] must keep that name.
        match pkg.get("bin").and_then(|b| b.as_array()) {
            Some(bins) => assert!(
                bins.iter()
                    .any(|b| b.get("name").and_then(|n| n.as_str()) == Some(binary)),
                "{}: no [[bin]] named {binary}",
                manifest.display()
            ),
            None => assert!(
                root().join(&dir).join("src/main.rs").is_file(),
                "{}: no src/main.rs, so no binary named {binary}",
                manifest.display()
            ),
        }
        // `cargo lambda build --bin <name>` at the root only searches the workspace's default
        // members, which for a root that is itself a package is the root package alone.
        let member = format!("crates/{binary}");
        assert!(
            default_members
                .iter()
                .any(|m| m == &member || m == "crates/*"),
            "[workspace] default-members must include {member} (or crates/*) for `sam build`"
        );
    }
}

fn id_binary(f: &Json) -> &str {
    f["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .expect("BuildProperties.Binary")
}

// ---------------------------------------------------------------------------
// Credential exchange: the chat user role, the identity pool, the Function URL
// ---------------------------------------------------------------------------

/// Every IAM statement in the template, evaluated: `(where, statement)`. Covers
/// the functions' inline policies, roles' inline policies and RolePolicy/Policy
/// resources.
fn all_statements(t: &Json, ev: &Eval) -> Vec<(String, Json)> {
    let mut out = Vec::new();
    let mut push = |place: String, doc: &Json| match ev.eval(&doc["Statement"]) {
        Some(Json::Array(statements)) => {
            out.extend(statements.into_iter().map(|s| (place.clone(), s)))
        }
        Some(one) => out.push((place, one)),
        None => {}
    };
    for (id, r) in resources(t) {
        let props = &r["Properties"];
        match r["Type"].as_str() {
            Some("AWS::Serverless::Function") => {
                for p in props["Policies"].as_array().into_iter().flatten() {
                    push(id.clone(), p);
                }
            }
            Some("AWS::IAM::Role") => {
                for p in props["Policies"].as_array().into_iter().flatten() {
                    push(id.clone(), &p["PolicyDocument"]);
                }
            }
            Some("AWS::IAM::RolePolicy" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                push(id.clone(), &props["PolicyDocument"]);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn no_resource_is_star_except_get_messaging_session_endpoint() {
    let t = load_template();
    for (scenario, params, _) in scenarios() {
        let ev = Eval::new(&t, &params);
        let statements = all_statements(&t, &ev);
        assert!(
            statements.len() > 10,
            "[{scenario}] statements found: {}",
            statements.len()
        );
        let mut star_grants = Vec::new();
        for (place, s) in &statements {
            assert!(
                s.get("NotResource").is_none(),
                "[{scenario}] {place}: NotResource in {s}"
            );
            if strings(&s["Resource"]).iter().any(|r| r == "*") {
                star_grants.push((place.clone(), strings(&s["Action"])));
            }
        }
        assert_eq!(
            star_grants,
            vec![(
                "ChatUserRole".to_owned(),
                vec!["chime:GetMessagingSessionEndpoint".to_owned()]
            )],
            "[{scenario}] only GetMessagingSessionEndpoint (no resource-level permission) may be on *"
        );
    }
}

#[test]
fn chat_user_role_is_scoped_to_the_callers_own_user() {
    let t = load_template();
    for (scenario, params, app) in scenarios() {
        let ev = Eval::new(&t, &params);
        let role = ev
            .eval(&resources(&t)["ChatUserRole"]["Properties"])
            .expect("ChatUserRole");
        assert_eq!(role["MaxSessionDuration"], 3600, "[{scenario}]");
        assert!(
            role.get("ManagedPolicyArns").is_none(),
            "[{scenario}] no managed policy"
        );
        let policies = role["Policies"].as_array().expect("Policies");
        assert_eq!(policies.len(), 1, "[{scenario}]");
        let statements = policies[0]["PolicyDocument"]["Statement"].clone();
        let own_user = format!("{app}/user/${{aws:PrincipalTag/UserUUID}}");
        let channels = format!("{app}/channel/*");
        let Json::Array(statements) = statements else {
            panic!("statements")
        };
        assert_eq!(statements.len(), 2, "[{scenario}] {statements:?}");
        assert_eq!(statements[0]["Effect"], "Allow");
        assert_eq!(statements[0]["Action"], "chime:GetMessagingSessionEndpoint");
        assert_eq!(statements[0]["Resource"], "*");
        let chat = &statements[1];
        assert_eq!(chat["Effect"], "Allow");
        assert_eq!(
            strings(&chat["Resource"]),
            vec![own_user, channels],
            "[{scenario}] the caller's own user (by tag) and the AppInstance's channels, nothing else"
        );
        let actions = strings(&chat["Action"]);
        for a in &actions {
            assert!(
                a.starts_with("chime:") && !a.contains('*'),
                "[{scenario}] {a}"
            );
            assert!(
                !a.contains("AppInstanceUser")
                    || a.contains("ForAppInstanceUser")
                    || a.contains("ByAppInstanceUser"),
                "[{scenario}] {a}: user management is for the provisioning functions only"
            );
        }
        for needed in [
            "chime:Connect",
            "chime:SendChannelMessage",
            "chime:ListChannelMessages",
        ] {
            assert!(actions.iter().any(|a| a == needed), "[{scenario}] {needed}");
        }
    }
}

#[test]
fn chat_user_role_trusts_exactly_the_exchange_function_and_the_identity_pool() {
    let t = load_template();
    for (scenario, params, _) in scenarios() {
        let ev = Eval::new(&t, &params);
        let trust = ev
            .eval(&resources(&t)["ChatUserRole"]["Properties"]["AssumeRolePolicyDocument"])
            .expect("trust policy");
        let exchange = json!({
            "Sid": "CredentialExchangeWithUserTag",
            "Effect": "Allow",
            "Principal": {"AWS": format!("${{{}Role.Arn}}", function_id(&t, CREDENTIAL_EXCHANGE))},
            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            "Condition": {"Null": {"aws:RequestTag/UserUUID": "false", "aws:RequestTag/Issuer": "false"}},
        });
        let pool = json!({
            "Sid": "CognitoIdentityPoolAuthenticated",
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
            "Condition": {
                "StringEquals": {"cognito-identity.amazonaws.com:aud": "${ChatIdentityPool}"},
                "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
            },
        });
        let expected = if params.is_empty() {
            json!([exchange, pool])
        } else {
            // No identity pool without the stack's own user pool.
            json!([exchange])
        };
        assert_eq!(trust["Statement"], expected, "[{scenario}]");
        assert!(
            !trust
                .to_string()
                .contains("cognito-identity.amazonaws.com:sub"),
            "the identity pool's sub is not the user pool's sub"
        );
    }
}

#[test]
fn the_identity_pool_tags_sessions_with_the_user_pool_sub() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let prop = |id: &str| ev.eval(&resources(&t)[id]["Properties"]).expect(id);
    let pool = prop("ChatIdentityPool");
    assert_eq!(pool["AllowUnauthenticatedIdentities"], false);
    assert_eq!(pool["AllowClassicFlow"], false);
    assert_eq!(
        pool["CognitoIdentityProviders"],
        json!([{"ClientId": "${UserPoolClient}", "ProviderName": "${UserPool.ProviderName}",
                "ServerSideTokenCheck": true}])
    );
    let tag = prop("ChatIdentityPoolPrincipalTag");
    assert_eq!(tag["IdentityPoolId"], "${ChatIdentityPool}");
    assert_eq!(tag["IdentityProviderName"], "${UserPool.ProviderName}");
    assert_eq!(tag["PrincipalTags"], json!({"UserUUID": "sub"}));
    assert_eq!(tag["UseDefaults"], false);
    let roles = prop("ChatIdentityPoolRoles");
    assert_eq!(
        roles["Roles"],
        json!({"authenticated": "${ChatUserRole.Arn}"})
    );
    for id in [
        "ChatIdentityPool",
        "ChatIdentityPoolPrincipalTag",
        "ChatIdentityPoolRoles",
    ] {
        assert_eq!(resources(&t)[id]["Condition"], "CreateUserPool", "{id}");
    }
}

#[test]
fn the_exchange_is_a_public_function_url_whose_token_is_the_auth() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let id = function_id(&t, CREDENTIAL_EXCHANGE);
    let url = &ev
        .eval(&only_of_type(&t, "AWS::Lambda::Url").1["Properties"])
        .expect("Url");
    assert_eq!(url["TargetFunctionArn"], json!(format!("${{{id}.Arn}}")));
    assert_eq!(url["AuthType"], "NONE");
    assert!(
        url.get("Cors").is_none(),
        "the function answers CORS itself"
    );
    let mut perms: Vec<(String, Json)> = evaluated(&t, &ev, "AWS::Lambda::Permission")
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p["FunctionName"] == json!(format!("${{{id}.Arn}}")))
        .map(|p| (p["Action"].as_str().unwrap_or_default().to_owned(), p))
        .collect();
    perms.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(perms.len(), 2, "{perms:?}");
    assert_eq!(perms[0].0, "lambda:InvokeFunction");
    assert_eq!(
        perms[0].1["InvokedViaFunctionUrl"], true,
        "only through the URL"
    );
    assert_eq!(perms[1].0, "lambda:InvokeFunctionUrl");
    assert_eq!(perms[1].1["FunctionUrlAuthType"], "NONE");
    let timeout = as_u64(fn_prop(&t, CREDENTIAL_EXCHANGE, "Timeout"), "Timeout");
    assert!(
        (5..=30).contains(&timeout),
        "room for a cold JWKS fetch, Chime and STS"
    );
}

// ---------------------------------------------------------------------------
// Metrics: alarms and the dashboard watch what the code publishes
// ---------------------------------------------------------------------------

/// What a function publishes: the code's own declaration, so a metric renamed
/// or dropped in the code fails here instead of leaving an alarm on nothing.
fn published_by(binary: &str) -> FunctionMetrics {
    match binary {
        PRE_SIGNUP => pre_signup::METRICS,
        POST_CONFIRMATION => post_confirmation::METRICS,
        IDP_SYNC => idp_sync::METRICS,
        CREDENTIAL_EXCHANGE => credential_exchange::METRICS,
        RECONCILE => reconcile::METRICS,
        other => panic!("no metrics declared for {other}"),
    }
}

/// The binary of the function a `FunctionName` dimension names
/// (`${PostConfirmationFunction}`, the function's `Ref`).
fn binary_named_by(t: &Json, value: &Json) -> &'static str {
    let value = value.as_str().expect("a FunctionName dimension value");
    BINARIES
        .into_iter()
        .find(|b| value == format!("${{{}}}", function_id(t, b)))
        .unwrap_or_else(|| panic!("FunctionName {value} is not one of the functions' Ref"))
}

/// A metric of our namespace, as an alarm or a widget names it: it must be
/// one the named function publishes. Its (binary, metric name).
fn our_metric(t: &Json, name: &str, dimensions: &[(String, Json)]) -> (&'static str, String) {
    assert!(
        Metric::ALL.iter().any(|m| m.name() == name),
        "{name} is not a metric the code publishes (chime_sync_core::metrics::Metric)"
    );
    assert_eq!(
        dimensions.len(),
        1,
        "{name}: the one dimension is {FUNCTION_DIMENSION}"
    );
    assert_eq!(dimensions[0].0, FUNCTION_DIMENSION, "{name}");
    let binary = binary_named_by(t, &dimensions[0].1);
    assert!(
        published_by(binary)
            .metrics
            .iter()
            .any(|m| m.name() == name),
        "{binary} does not publish {name}"
    );
    (binary, name.to_owned())
}

/// One metric an alarm reads.
struct AlarmMetric {
    namespace: String,
    name: String,
    dimensions: Vec<(String, Json)>,
    statistic: String,
}

/// Every metric an alarm reads: its `MetricName`, or each `MetricStat` of its `Metrics`.
fn alarm_metrics(alarm: &Json) -> Vec<AlarmMetric> {
    let text = |v: &Json| v.as_str().unwrap_or("").to_owned();
    let read = |metric: &Json, statistic: &Json| AlarmMetric {
        namespace: text(&metric["Namespace"]),
        name: text(&metric["MetricName"]),
        dimensions: metric["Dimensions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| (text(&d["Name"]), d["Value"].clone()))
                    .collect()
            })
            .unwrap_or_default(),
        statistic: text(statistic),
    };
    if alarm.get("MetricName").is_some() {
        return vec![read(alarm, &alarm["Statistic"])];
    }
    alarm["Metrics"]
        .as_array()
        .expect("an alarm reads MetricName or Metrics")
        .iter()
        .filter_map(|q| q.get("MetricStat"))
        .map(|stat| read(&stat["Metric"], &stat["Stat"]))
        .collect()
}

#[test]
fn alarms_watch_metrics_the_functions_publish() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let alarms: Vec<(String, Json)> = evaluated(&t, &ev, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, p)| (id.clone(), p))
        .collect();
    let mut denied_alarmed = BTreeSet::new();
    let mut hand_off_rate = false;
    for (id, alarm) in &alarms {
        // Every alarm notifies where the DLQ alarm does.
        assert_eq!(
            alarm["AlarmActions"],
            json!([]),
            "{id}: with no AlarmEmail/AlarmTopicArn there is no action"
        );
        let metrics = alarm_metrics(alarm);
        let ours: Vec<(&str, String)> = metrics
            .iter()
            .filter(|m| m.namespace == NAMESPACE)
            .map(|m| {
                assert_eq!(m.statistic, "Sum", "{id}: counts are summed");
                our_metric(&t, &m.name, &m.dimensions)
            })
            .collect();
        for m in &metrics {
            assert!(
                [NAMESPACE, "AWS/SQS", "AWS/States"].contains(&m.namespace.as_str()),
                "{id}: namespace {}",
                m.namespace
            );
        }
        if ours.len() == 1 && ours[0].1 == Metric::Denied.name() {
            assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold", "{id}");
            assert_eq!(alarm["Threshold"], 0, "{id}: any denial alarms");
            assert_eq!(alarm["TreatMissingData"], "notBreaching", "{id}");
            denied_alarmed.insert(ours[0].0);
        }
        let names: BTreeSet<&str> = ours.iter().map(|(_, n)| n.as_str()).collect();
        if names.contains(Metric::HandedOff.name()) {
            assert!(
                ours.iter().all(|(b, _)| *b == POST_CONFIRMATION),
                "{id}: hand-offs are post-confirmation's"
            );
            assert!(
                names.contains(Metric::Decisions.name()),
                "{id}: a rate needs the decisions as denominator"
            );
            let rate = alarm["Metrics"]
                .as_array()
                .expect("metric math")
                .iter()
                .find(|q| q["ReturnData"] == true)
                .expect("the returned expression");
            let expression = rate["Expression"].as_str().expect("an expression");
            assert!(
                expression.contains("/ decisions"),
                "{id}: {expression} is not a share of decisions"
            );
            assert_eq!(alarm["Threshold"], "10", "HandOffAlarmPercent's default");
            hand_off_rate = true;
        }
    }
    let calls_aws: BTreeSet<&str> = BINARIES
        .into_iter()
        .filter(|b| published_by(b).publishes(Metric::Denied))
        .collect();
    assert_eq!(
        calls_aws,
        BTreeSet::from([POST_CONFIRMATION, IDP_SYNC, CREDENTIAL_EXCHANGE])
    );
    assert_eq!(
        denied_alarmed, calls_aws,
        "a Denied > 0 alarm for every function that can be denied"
    );
    assert!(
        hand_off_rate,
        "an alarm on post-confirmation's hand-off rate"
    );

    // With a topic, every alarm notifies it, on alarm and back to OK.
    let ev = Eval::new(&t, &[("AlarmEmail", "ops@example.com")]);
    for (id, p) in evaluated(&t, &ev, "AWS::CloudWatch::Alarm") {
        assert_eq!(p["AlarmActions"], json!(["${AlarmTopic}"]), "{id}");
        assert_eq!(p["OKActions"], json!(["${AlarmTopic}"]), "{id}");
    }
}

/// The alarms that read exactly one metric: (id, the metric, the evaluated properties).
fn single_metric_alarms(t: &Json, ev: &Eval) -> Vec<(String, AlarmMetric, Json)> {
    evaluated(t, ev, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter_map(|(id, p)| {
            let mut metrics = alarm_metrics(&p);
            (metrics.len() == 1).then(|| (id.clone(), metrics.remove(0), p))
        })
        .collect()
}

/// A failed reconcile cycle is not silent: a failed invocation (`Failed`, as the code emits
/// it), deletions refused because the pool's listing could not be trusted
/// (`DeletionsRefused`), and the reconcile state machine's failed, timed-out and aborted
/// executions (which also catch an invocation that timed out or crashed before writing its
/// metrics line) each alarm at the first one, notify like every other alarm (checked in
/// `alarms_watch_metrics_the_functions_publish`) and are on the dashboard (checked in
/// `the_dashboard_shows_the_alarms_outcomes_latency_and_the_queues_age`).
#[test]
fn a_failed_or_untrusted_reconcile_cycle_alarms() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let alarms = single_metric_alarms(&t, &ev);
    let reconcile = json!(format!("${{{}}}", function_id(&t, RECONCILE)));
    // AWS/States names a state machine by its ARN, which the Ref of a SAM state machine is.
    let machine = json!(format!(
        "${{{}}}",
        only_of_type(&t, "AWS::Serverless::StateMachine").0
    ));
    let expected: [(&str, &str, &str, &Json); 5] = [
        (
            NAMESPACE,
            Metric::Failed.name(),
            FUNCTION_DIMENSION,
            &reconcile,
        ),
        (
            NAMESPACE,
            Metric::DeletionsRefused.name(),
            FUNCTION_DIMENSION,
            &reconcile,
        ),
        (
            "AWS/States",
            "ExecutionsFailed",
            "StateMachineArn",
            &machine,
        ),
        (
            "AWS/States",
            "ExecutionsTimedOut",
            "StateMachineArn",
            &machine,
        ),
        (
            "AWS/States",
            "ExecutionsAborted",
            "StateMachineArn",
            &machine,
        ),
    ];
    for (namespace, name, dimension, value) in expected {
        let found: Vec<&(String, AlarmMetric, Json)> = alarms
            .iter()
            .filter(|(_, m, _)| {
                m.namespace == namespace
                    && m.name == name
                    && m.dimensions == [(dimension.to_owned(), value.clone())]
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one alarm on {namespace} {name} of {value}, found {:?}",
            found.iter().map(|(id, ..)| id).collect::<Vec<_>>()
        );
        let (id, metric, p) = found[0];
        assert_eq!(metric.statistic, "Sum", "{id}: each one counts");
        assert_eq!(p["Threshold"], 1, "{id}: the first one alarms");
        assert_eq!(
            p["ComparisonOperator"], "GreaterThanOrEqualToThreshold",
            "{id}"
        );
        assert_eq!(p["EvaluationPeriods"], 1, "{id}");
        assert_eq!(
            p["TreatMissingData"], "notBreaching",
            "{id}: no cycle, no alarm"
        );
        // A cycle every ReconcileScheduleMinutes (at most a day apart is allowed, 30 minutes
        // by default): the alarm stays up for an hour, not one five-minute period.
        assert!(
            as_u64(&p["Period"], "Period") >= 3600,
            "{id}: a period of at least an hour"
        );
    }
}

/// The operator's documents match the stack: every alarm has a section of its own in
/// docs/RUNBOOK.md (its heading is the alarm's logical id), which the alarm's description and
/// README's "Operating it" link to; the runbook names every function's log group as the
/// template names it; and every stack output the documents read exists.
#[test]
fn every_alarm_has_a_runbook_entry_and_the_docs_name_what_the_stack_has() {
    let t = load_template();
    let read = |path: &str| {
        std::fs::read_to_string(root().join(path))
            .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    };
    let runbook = read("docs/RUNBOOK.md");
    let readme = read("README.md");
    let deploy = read("docs/DEPLOY.md");
    let headings: BTreeSet<&str> = runbook
        .lines()
        .filter(|l| l.starts_with("## ") || l.starts_with("### "))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    for (id, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        assert!(
            headings.contains(id.as_str()),
            "docs/RUNBOOK.md has no section headed `## {id}`"
        );
        let anchor = format!("docs/RUNBOOK.md#{}", id.to_lowercase());
        let description = alarm["Properties"]["AlarmDescription"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: an AlarmDescription"));
        assert!(
            description.contains(&anchor),
            "{id}: its AlarmDescription points the on-call engineer to {anchor}"
        );
        assert!(
            readme.contains(&format!("]({anchor})")),
            "README, Operating it: no link to {anchor}"
        );
    }

    for binary in BINARIES {
        let group = &function(&t, binary)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"];
        let group = group.as_str().expect("the function's LogGroup is a Ref");
        assert_eq!(
            resources(&t)[group]["Properties"]["LogGroupName"],
            json!({"Fn::Sub": format!("/aws/lambda/${{AWS::StackName}}/{binary}")}),
            "{binary}: the log group the documents name"
        );
        let documented = format!("/aws/lambda/$STACK/{binary}");
        assert!(
            runbook.contains(&documented),
            "docs/RUNBOOK.md does not name {binary}'s log group {documented}"
        );
    }

    let outputs: BTreeSet<&str> = t["Outputs"]
        .as_object()
        .expect("Outputs")
        .keys()
        .map(String::as_str)
        .collect();
    for (doc, text) in [
        ("docs/RUNBOOK.md", &runbook),
        ("docs/DEPLOY.md", &deploy),
        ("README.md", &readme),
    ] {
        let by_query = text
            .split("OutputKey=='")
            .skip(1)
            .filter_map(|rest| rest.split('\'').next())
            .filter(|name| !name.starts_with('$'));
        let by_helper = text
            .split("$(out ")
            .skip(1)
            .filter_map(|rest| rest.split(')').next());
        for name in by_query.chain(by_helper) {
            assert!(
                outputs.contains(name),
                "{doc} reads the stack output {name}, which template.yaml does not declare"
            );
        }
    }
}

#[test]
fn the_dashboard_shows_the_alarms_outcomes_latency_and_the_queues_age() {
    let t = load_template();
    let ev = Eval::new(&t, &[]);
    let dashboard = only_of_type(&t, "AWS::CloudWatch::Dashboard").1;
    let body = ev
        .eval(&dashboard["Properties"]["DashboardBody"])
        .expect("DashboardBody");
    let body: Json =
        serde_json::from_str(body.as_str().expect("a JSON string")).expect("DashboardBody is JSON");
    let widgets = body["widgets"].as_array().expect("widgets");

    // The alarm widget lists every alarm of the stack.
    let shown: BTreeSet<String> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| strings(&w["properties"]["alarms"]))
        .collect();
    let alarms: BTreeSet<String> = of_type(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, _)| format!("${{{id}.Arn}}"))
        .collect();
    assert_eq!(shown, alarms);

    // Every metric row: ours, published by the function it names; or SQS's.
    let mut ours: BTreeSet<(&str, String)> = BTreeSet::new();
    let mut sqs: BTreeSet<(String, String)> = BTreeSet::new();
    for widget in widgets.iter().filter(|w| w["type"] == "metric") {
        for row in widget["properties"]["metrics"].as_array().expect("metrics") {
            let row = row.as_array().expect("a metric row");
            let fields: Vec<&Json> = row.iter().filter(|f| !f.is_object()).collect();
            if fields.is_empty() {
                assert!(row[0].get("expression").is_some(), "{row:?}");
                continue;
            }
            let text = |i: usize| fields[i].as_str().expect("a string").to_owned();
            assert_eq!(fields.len(), 4, "namespace, name, one dimension: {row:?}");
            match text(0).as_str() {
                NAMESPACE => {
                    ours.insert(our_metric(&t, &text(1), &[(text(2), fields[3].clone())]));
                }
                "AWS/SQS" => {
                    assert_eq!(text(2), "QueueName");
                    sqs.insert((text(1), text(3)));
                }
                other => panic!("unexpected namespace {other}"),
            }
        }
    }
    // The queues' age of oldest message, both queues.
    for queue in ["${SyncQueue.QueueName}", "${DeadLetterQueue.QueueName}"] {
        assert!(
            sqs.contains(&("ApproximateAgeOfOldestMessage".to_owned(), queue.to_owned())),
            "age of oldest message of {queue}"
        );
    }
    // The outcomes the functions count, somewhere; and what every caller of
    // Chime has: denials, throttling retried, latency.
    let shown = |name: &str| ours.iter().any(|(_, n)| n == name);
    for m in [
        Metric::Created,
        Metric::Updated,
        Metric::AlreadyExists,
        Metric::Deleted,
        Metric::AlreadyGone,
        Metric::DeletionScheduled,
        Metric::Restored,
        Metric::HandedOff,
        Metric::DeadLettered,
        Metric::DeletionsWithheld,
    ] {
        assert!(shown(m.name()), "{} is not on the dashboard", m.name());
    }
    for binary in BINARIES {
        for m in [
            Metric::Denied,
            Metric::ThrottledRetries,
            Metric::ChimeCallLatency,
        ] {
            if published_by(binary).publishes(m) {
                assert!(
                    ours.contains(&(binary, m.name().to_owned())),
                    "{binary}'s {} is not on the dashboard",
                    m.name()
                );
            }
        }
    }
}

#[test]
fn lambdas_log_level_filter_keeps_the_metric_lines() {
    // Lambda drops JSON lines below the function's ApplicationLogLevel; the
    // metric lines are INFO. Above INFO every alarm on them would go quiet.
    let t = load_template();
    for binary in BINARIES {
        let logging = &function(&t, binary)["Properties"]["LoggingConfig"];
        if let Some(level) = logging.get("ApplicationLogLevel") {
            assert!(
                ["TRACE", "DEBUG", "INFO"].contains(&level.as_str().unwrap_or("")),
                "{binary}: ApplicationLogLevel {level} drops the INFO metric lines"
            );
        }
    }
}
