//! The markdown section: what was measured, how, and against which target,
//! with the assumptions (the stand-ins' latencies) said where the figures are.

use std::time::{Duration, SystemTime};

use crate::idp_sync::{IdpLatency, Variant};
use crate::{Args, LedgerMode, Measured};

/// Everything one run measured.
pub struct Results {
    pub runs: Vec<Measured>,
    pub idp: Option<IdpLatency>,
    pub cli: (Duration, String),
    pub machine: String,
    pub took: Duration,
}

/// The machine, and how busy it was: a loaded machine stretches every wall time.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    format!(
        "{cpus} CPUs ({model}), load average {} at the start",
        load()
    )
}

/// The 1, 5 and 15 minute load averages.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

pub fn render(args: &Args, results: &Results) -> String {
    let mut out = String::new();
    let date = humantime::format_rfc3339_seconds(SystemTime::now());
    out.push_str(&format!(
        "## Reconcile: {} users, the ledger's cost, and the CLI's apply\n\n",
        thousands(u64::from(args.users))
    ));
    out.push_str(&format!(
        "Measured {date} by `cargo run --release -p chime-sync-bench --bin bench-reconcile` on {}; \
         {} binaries; {:.0} s in all; load average {} at the end.\n\n",
        results.machine,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        results.took.as_secs_f64(),
        load()
    ));
    out.push_str(&reconcile_table(args, &results.runs));
    out.push_str(&ledger_cost(args, &results.runs));
    if let Some(idp) = &results.idp {
        out.push_str(&idp_section(args, idp));
    }
    out.push_str(&format!(
        "\nThe CLI: `chime-sync reconcile --users <{} users> --apply` (default `--concurrency 8`, \
         `--rate 200`, no `--ledger-table`: an empty ledger in memory) against the Chime fake \
         answering every call after {} ms: **{:.1} s** (target: at most 15 s). {}.\n",
        args.cli_users,
        args.cli_latency_ms,
        results.cli.0.as_secs_f64(),
        results.cli.1.trim_end_matches('.')
    ));
    out
}

fn ledger_label(m: &Measured) -> &'static str {
    match m.ledger {
        LedgerMode::Memory => "memory",
        LedgerMode::Table => "table (stand-in)",
    }
}

fn reconcile_table(args: &Args, runs: &[Measured]) -> String {
    let mut out = format!(
        "The release `reconcile` bootstrap behind a mock Runtime API reads a pool of {} users from a \
         Cognito `ListUsers` double that enforces a {} requests/s quota (Cognito's `UserList` quota; \
         `TooManyRequestsException` beyond), at its default share of 50 %; lists the Chime fake (no \
         latency, no TPS limit: Chime's own ListAppInstanceUsers quota is not documented); publishes to \
         a counting SQS stand-in (moto's FIFO queue slows down with tens of thousands of groups). \
         Grace mode: deletion candidates are described. `UNOWNED_USERS=pool`: no ledger here holds a \
         record, so every user reads as owned by no source, and the pool's absences are planned as \
         before the ledger. Wall time from the event to the answer; peak RSS is the process's \
         `VmHWM`.\n\n",
        thousands(u64::from(args.users)),
        args.quota
    );
    out.push_str("| scenario | `LEDGER_TABLE` | wall | ListUsers calls (throttled) | ListAppInstanceUsers | Describe | SendMessageBatch (messages) | creates / updates / deletes | ledger: BatchGetItem (keys) / Query / UpdateItem | peak RSS |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for m in runs {
        let (t, l) = (&m.totals, &m.ledger_calls);
        out.push_str(&format!(
            "| {} | {} | {:.1} s | {} ({}) | {} | {} | {} ({}) | {} / {} / {} | {} ({}) / {} / {} | {} |\n",
            m.scenario,
            ledger_label(m),
            m.wall.as_secs_f64(),
            m.list_users,
            m.throttled,
            m.chime_lists,
            m.describes,
            m.batches,
            m.messages,
            t["creates"],
            t["updates"],
            t["deletes"],
            l.batch_get,
            l.batch_get_keys,
            l.query,
            l.update,
            mb(m.peak_rss_kib),
        ));
    }
    out
}

/// The steady state with the table against the same in memory: the
/// difference in wall time, and where the ledger's calls went.
fn ledger_cost(args: &Args, runs: &[Measured]) -> String {
    let steady = |mode| {
        runs.iter()
            .find(|m| m.ledger == mode && m.scenario.starts_with("steady"))
    };
    let (Some(memory), Some(table)) = (steady(LedgerMode::Memory), steady(LedgerMode::Table))
    else {
        return String::new();
    };
    let extra = (table.wall.as_secs_f64() / memory.wall.as_secs_f64() - 1.0) * 100.0;
    let l = &table.ledger_calls;
    let t = &table.totals;
    let number = |key: &str| t[key].as_u64().unwrap_or(0);
    let candidates = number("creates") + number("updates") + number("deletesPlanned");
    let unchanged = number("unchanged");
    let per_user = u64::from(args.users) / 100;
    // Only candidates are read, and in fewer calls than one read of every user would take.
    let batched = l.batch_get_keys <= candidates && l.batch_get < per_user;
    format!(
        "\n**The ledger's cost to a cycle** (steady state): {:.1} s with the ledger table against \
         {:.1} s with `LEDGER_TABLE=memory` (no ledger I/O, the cost before the ledger): **{extra:+.1} %** \
         (target: at most +5 %: {}). The table's calls: {} `BatchGetItem` for {} keys, the plan's \
         candidates only ({} creates + updates + deletions planned; at most 100 keys a call, and \
         {} × 100 ≥ {}), {} `Query` of the `deletions` index (pending marks), {} `UpdateItem` (the \
         Chime user count), {} `GetItem`, {} `TransactWriteItems`, {} other. The {} unchanged users \
         cost no ledger call: reading every user would take {} `BatchGetItem` at least (batched reads \
         of candidates only: {}). With `LEDGER_TABLE=memory` the stand-in saw {} calls. The stand-in \
         answers each call after {} ms: an assumed round trip to DynamoDB in the same Region, not a \
         measurement of DynamoDB; the calls are made one after another, so they are about {} × {} ms \
         = {:.2} s of the cycle.\n",
        table.wall.as_secs_f64(),
        memory.wall.as_secs_f64(),
        met(extra <= 5.0),
        l.batch_get,
        thousands(l.batch_get_keys),
        thousands(candidates),
        l.batch_get,
        thousands(l.batch_get_keys),
        l.query,
        l.update,
        l.get,
        l.transact,
        l.other,
        thousands(unchanged),
        thousands(per_user),
        met(batched),
        memory.ledger_calls.total(),
        args.ledger_latency_ms,
        l.total(),
        args.ledger_latency_ms,
        (l.total() * args.ledger_latency_ms) as f64 / 1000.0,
    )
}

fn idp_row(label: &str, v: &Variant) -> String {
    let (p50, p95) = v.batch_ms();
    format!(
        "| {label} | {} | {p50:.1} ms | {p95:.1} ms | {:.2} ms | {:.2} | {:.2} ({} UpdateItem, {} TransactWriteItems, {} GetItem) |\n",
        v.messages,
        v.ms_per_message(),
        v.per_message(v.chime_requests),
        v.per_message(v.ledger.total()),
        v.ledger.update,
        v.ledger.transact,
        v.ledger.get,
    )
}

fn idp_section(args: &Args, idp: &IdpLatency) -> String {
    let (without, with) = (&idp.without, &idp.with);
    let extra_calls = with.per_message(with.ledger.total() + with.chime_requests)
        - without.per_message(without.ledger.total() + without.chime_requests);
    let extra_ms = with.batch_ms().0 - without.batch_ms().0;
    let round_trips = extra_ms / idp.latency_ms.max(1) as f64;
    // What a round trip costs above the injected latency (signing, JSON, TLS, ten messages
    // on one thread), from the variant whose round trips are all Chime's.
    let chime_trips = without.per_message(without.chime_requests).max(1.0);
    let overhead = (without.batch_ms().0 - chime_trips * idp.latency_ms as f64) / chime_trips;
    let mut out = format!(
        "\n**idp-sync's cost of the ledger per message.** `idp_sync::handle` in-process (configured \
         from its variables as the function is, on a current_thread runtime), {} batches of ten \
         `user.created` messages about new users, one FIFO group each, with `LEDGER_TABLE=memory` \
         and with a ledger table on the counting DynamoDB stand-in, batches of the two alternating. \
         The Chime fake and the stand-in both answer each call after {} ms (the stand-in's figure is \
         an assumption, as above) over HTTPS (a TLS front each, connections warmed by one batch \
         first). The ten messages of a batch run side by side, so a batch lasts as long as a \
         message's own latency; wall per message is the batches' total over the messages.\n\n",
        with.batches.len() + without.batches.len(),
        idp.latency_ms
    );
    out.push_str("| `LEDGER_TABLE` | messages | batch (message latency) median | p95 | wall per message | Chime requests per message | ledger calls per message |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    out.push_str(&idp_row("memory", without));
    out.push_str(&idp_row("table (stand-in)", with));
    out.push_str(&format!(
        "\nThe ledger adds {extra_calls:.2} round trips per message by count (the target, judged on \
         the count: ≤ 1 extra round trip per message: {}), and {extra_ms:+.1} ms ({round_trips:.2} × \
         the {} ms latency) to a message's median latency; without the ledger, each of a message's \
         {chime_trips:.0} Chime round trips took {overhead:.1} ms above the injected latency, the \
         client's own cost of a call, which the ledger's call pays too.\n",
        met(extra_calls <= 1.0),
        args.ledger_latency_ms
    ));
    out
}
