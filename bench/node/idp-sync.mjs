// Node.js 20 equivalent of the idp-sync function (crates/idp-sync and chime-sync-core's
// handlers/idp_sync.rs and schema.rs), for BENCHMARKS.md: schema-v1 messages, raw or
// inside an SNS or EventBridge envelope; FIFO groups applied in order, different groups
// concurrently (at most MAX_CONCURRENT_GROUPS); a failed message blocks the rest of its
// group; permanent failures go to DLQ_URL with their reason; a partial batch response.
// Handler: `idp-sync.handler`.

import {
  ChimeDirectory,
  InputError,
  SqsQueue,
  log,
  number,
  parseDisplayName,
  parseMetadata,
  parseUserId,
  queueUrl,
  required,
} from "./shared.mjs";

const SOURCE = "idp-sync";
const DEADLINE_MARGIN_MS = 500;

// Built once per sandbox, at module load (the init phase), as in main.rs.
const directory = new ChimeDirectory({
  appInstanceArn: required("APP_INSTANCE_ARN"),
  budgetMs: number("CHIME_BUDGET_MS", 5000, 100, 900000),
  maxAttempts: number("CHIME_MAX_ATTEMPTS", 4, 1, 10),
});
const dlq = new SqsQueue(queueUrl("DLQ_URL"), 5000);
const maxConcurrentGroups = number("MAX_CONCURRENT_GROUPS", 10, 1, 100);

function requiredStr(obj, key, field) {
  const v = obj[key];
  if (v === undefined || v === null) throw new InputError("MissingField", `${field} is missing`);
  if (typeof v !== "string") throw new InputError("WrongType", `${field} must be a string`);
  return v;
}

function unwrapEnvelope(outer) {
  if (outer === null || typeof outer !== "object" || Array.isArray(outer)) {
    throw new InputError("WrongType", "body must be a JSON object");
  }
  if (outer.Type === "Notification" && "Message" in outer) {
    if (typeof outer.Message !== "string") throw new InputError("WrongType", "Message must be a string");
    try {
      return ["sns", JSON.parse(outer.Message)];
    } catch (e) {
      throw new InputError("InvalidJson", `in SNS Message: ${e.message}`);
    }
  }
  if ("detail-type" in outer && "detail" in outer) {
    let detail = outer.detail;
    if (typeof detail === "string") {
      try {
        detail = JSON.parse(detail);
      } catch (e) {
        throw new InputError("InvalidJson", `in EventBridge detail: ${e.message}`);
      }
    }
    return ["eventbridge", detail];
  }
  return ["raw", outer];
}

function parseBody(body) {
  let outer;
  try {
    outer = JSON.parse(body);
  } catch (e) {
    throw new InputError("InvalidJson", e.message);
  }
  const [envelope, m] = unwrapEnvelope(outer);
  if (m === null || typeof m !== "object" || Array.isArray(m)) throw new InputError("WrongType", "message must be a JSON object");
  if (m.version === undefined) throw new InputError("MissingField", "version is missing");
  if (m.version !== 1) throw new InputError("UnsupportedVersion", `version ${JSON.stringify(m.version)}`);
  const type = requiredStr(m, "type", "type");
  for (const k of ["eventId", "occurredAt"]) {
    if (m[k] !== undefined && m[k] !== null && typeof m[k] !== "string") throw new InputError("WrongType", `${k} must be a string`);
  }
  const user = m.user;
  if (user === undefined || user === null) throw new InputError("MissingField", "user is missing");
  if (typeof user !== "object" || Array.isArray(user)) throw new InputError("WrongType", "user must be an object");
  const id = parseUserId(requiredStr(user, "sub", "user.sub"));
  const profile = () => ({
    id,
    name: parseDisplayName(requiredStr(user, "displayName", "user.displayName")),
    metadata: "metadata" in user ? parseMetadata(user.metadata) : undefined,
  });
  switch (type) {
    case "user.created":
      return { envelope, type, apply: (d) => d.upsert(profile()), sub: id, check: profile };
    case "user.updated":
      return { envelope, type, apply: (d) => d.upsert(profile()), sub: id, check: profile };
    case "user.deleted":
      return { envelope, type, apply: (d) => d.deleteIfPresent(id), sub: id, check: () => {} };
    default:
      throw new InputError("UnknownType", `unknown type ${type.slice(0, 64)}`);
  }
}

/** The sub of an invalid message, where it can be read (for grouping and logs). */
function subHint(body) {
  try {
    return parseUserId(unwrapEnvelope(JSON.parse(body))[1]?.user?.sub);
  } catch {
    return undefined;
  }
}

function parseRecord(record, index) {
  const messageId = record.messageId ?? `missing-message-id-${index}`;
  const body = record.body ?? "";
  let message;
  let error;
  try {
    message = parseBody(body);
    message.check();
  } catch (e) {
    error = e;
  }
  const sub = message?.sub ?? subHint(body);
  const group = record.attributes?.MessageGroupId ?? sub ?? messageId;
  return { index, record, messageId, group, sub, message, error };
}

function sqsId(raw) {
  const cleaned = [...raw].map((c) => (/^[\x21-\x7e]$/.test(c) ? c : "_")).slice(0, 128).join("");
  return cleaned || "_";
}

async function deadLetter(p, error) {
  const attributes = {
    FailureReason: String(error.message).slice(0, 1000),
    ErrorCode: error.code ?? "Invalid",
    SourceMessageId: p.messageId,
  };
  if (p.record.eventSourceARN) attributes.SourceQueueArn = p.record.eventSourceARN;
  try {
    await dlq.send({ body: p.record.body ?? "", groupId: sqsId(p.group), deduplicationId: sqsId(p.messageId), attributes });
    return { kind: "dead-lettered", code: error.code };
  } catch (e) {
    log("WARN", { source: SOURCE, message_id: p.messageId, outcome: "dlq-send-failed", error: String(e) });
    return { kind: "failed", code: "DlqSendFailed" };
  }
}

async function runMessage(p, deadline) {
  if (p.error) return deadLetter(p, p.error);
  const left = deadline - Date.now();
  if (left <= 0) return { kind: "failed", code: "Timeout" };
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("deadline"), { code: "Timeout", retryable: true })), left);
  });
  try {
    const applied = await Promise.race([p.message.apply(directory), expired]);
    return { kind: "applied", applied };
  } catch (e) {
    if (e.retryable === false) return deadLetter(p, e);
    return { kind: "failed", code: e.code ?? "Transport" };
  } finally {
    clearTimeout(timer);
  }
}

async function runGroup(group, deadline, failures) {
  let blocked = false;
  for (const p of group) {
    const outcome = blocked ? { kind: "blocked" } : await runMessage(p, deadline);
    blocked = outcome.kind === "failed" || outcome.kind === "blocked";
    if (blocked) failures.add(p.index);
    const fields = {
      source: SOURCE,
      sub: p.sub ?? "-",
      message_id: p.messageId,
      event_type: p.message?.type ?? "-",
      envelope: p.message?.envelope ?? "-",
      outcome: outcome.applied ?? outcome.kind + (outcome.code ? ` (${outcome.code})` : ""),
    };
    log(outcome.kind === "applied" ? "INFO" : "WARN", fields);
  }
}

export const handler = async (event, context) => {
  const deadline = Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
  const parsed = (event?.Records ?? []).map(parseRecord);
  // Groups in order of first appearance, records in batch order.
  const groups = new Map();
  for (const p of parsed) {
    if (!groups.has(p.group)) groups.set(p.group, []);
    groups.get(p.group).push(p);
  }
  const pending = [...groups.values()];
  const failures = new Set();
  const workers = Array.from({ length: Math.min(maxConcurrentGroups, pending.length) }, async () => {
    for (let g = pending.shift(); g; g = pending.shift()) await runGroup(g, deadline, failures);
  });
  await Promise.all(workers);
  return {
    batchItemFailures: parsed.filter((p) => failures.has(p.index)).map((p) => ({ itemIdentifier: p.messageId })),
  };
};
