// What post-confirmation.mjs and idp-sync.mjs share: the same validation, display-name
// rules, Chime calls and error classification as the Rust crates (chime-sync-core's
// identity.rs, profile.rs, directory.rs and chime-sync-aws's chime.rs), written the way
// the public Node.js samples are: aws-sdk v3 clients built once at module load.
//
// Benchmark-only code: it exists so that BENCHMARKS.md compares like with like.

import {
  ChimeSDKIdentityClient,
  CreateAppInstanceUserCommand,
  DeleteAppInstanceUserCommand,
  DescribeAppInstanceUserCommand,
  UpdateAppInstanceUserCommand,
} from "@aws-sdk/client-chime-sdk-identity";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";

/** A start-up configuration error names its variable, as config.rs does. */
export function required(name) {
  const value = (process.env[name] ?? "").trim();
  if (!value) throw new Error(`${name} is required but not set`);
  return value;
}

export function number(name, fallback, min, max) {
  const raw = (process.env[name] ?? "").trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, not \`${raw}\``);
  }
  return n;
}

const APP_INSTANCE_ARN = /^arn:aws[a-z-]*:chime:([a-z0-9-]+):(\d{12}):app-instance\/([A-Za-z0-9-]+)$/;

export function appInstance(raw) {
  const m = APP_INSTANCE_ARN.exec(raw);
  if (!m) throw new Error("APP_INSTANCE_ARN is not a valid AppInstance ARN");
  return { arn: raw, region: m[1] };
}

export function queueUrl(name) {
  const url = required(name);
  if (!/^https?:\/\/[^/]+\/[^/]+\/[^/]+\/?$/.test(url)) {
    throw new Error(`${name} must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)`);
  }
  return url;
}

/** Chime's AppInstanceUserId pattern, and a Cognito sub (a UUID), lower-cased. */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export class InputError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export function parseUserId(raw) {
  if (typeof raw !== "string" || raw.length === 0) throw new InputError("InvalidUserId", "the sub is empty");
  if (!UUID.test(raw)) throw new InputError("InvalidUserId", "the sub is not a Cognito sub (a UUID)");
  return raw.toLowerCase();
}

/** Whitespace folded, cut to 100 UTF-16 units on a character boundary, not blank. */
export function parseDisplayName(raw) {
  const cleaned = String(raw)
    .split(/[\s\p{Cc}]+/u)
    .filter((w) => w.length > 0)
    .join(" ");
  let units = 0;
  let cut = "";
  for (const c of cleaned) {
    units += c.length;
    if (units > 100) break;
    cut += c;
  }
  const trimmed = cut.trimEnd();
  if (!trimmed) throw new InputError("InvalidDisplayName", "the display name is blank");
  return trimmed;
}

export function parseMetadata(value) {
  const text = value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
  if (text.length > 1024) throw new InputError("MetadataTooLong", `metadata has ${text.length} UTF-16 units (max 1024)`);
  return text;
}

/** DISPLAY_NAME_ATTRIBUTES, e.g. `preferred_username,name,given_name family_name,email:local`. */
export function displayNamePolicy(spec) {
  const sources = spec
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e)
    .map((e) => (e === "email:local" ? { email: true } : { names: e.split(/\s+/) }));
  if (sources.length === 0) throw new Error("DISPLAY_NAME_ATTRIBUTES lists no attribute");
  return (attributes) => {
    for (const source of sources) {
      const raw = source.email
        ? (attributes.email ?? "").split("@").length > 1
          ? attributes.email.slice(0, attributes.email.indexOf("@"))
          : ""
        : source.names
            .map((n) => attributes[n])
            .filter((v) => typeof v === "string")
            .join(" ");
      try {
        return parseDisplayName(raw);
      } catch {
        // next source
      }
    }
    return undefined;
  };
}

export const DEFAULT_NAME_POLICY = "name,given_name family_name,email:local";

/** Thrown by the directory: `retryable` decides between a retry and the DLQ. */
export class DirectoryError extends Error {
  constructor(code, retryable, message) {
    super(message ?? code);
    this.code = code;
    this.retryable = retryable;
  }
}

/** The one place an SDK error becomes a DirectoryError (as chime.rs's map_error). */
function mapError(op, err) {
  if (err?.name === "AbortError" || err?.name === "TimeoutError") return new DirectoryError("Timeout", true);
  const status = err?.$metadata?.httpStatusCode;
  const name = err?.name ?? "";
  if (name === "ThrottledClientException" || status === 429) return new DirectoryError("Throttled", true, name);
  if (name === "ServiceFailureException" || name === "ServiceUnavailableException" || status >= 500) {
    return new DirectoryError("Unavailable", true, name);
  }
  // Chime's answer for a missing user is undocumented: 404, or the 403 its messaging API gives
  // for an unknown user ARN (the fake's default). As the Rust adapter, a read, update or delete
  // takes that 403 as "missing" (upsert then creates; a create it refuses is a real denial).
  if (op !== "create" && status === 403 && /invalid app instance user ARN/i.test(String(err?.message ?? ""))) {
    return new DirectoryError("NotFound", false);
  }
  if (["UnauthorizedClientException", "ForbiddenException", "AccessDeniedException"].includes(name) || status === 401 || status === 403) {
    return new DirectoryError("AccessDenied", true, name);
  }
  if (name === "NotFoundException" || status === 404) {
    return op === "create" ? new DirectoryError("AccessDenied", true, "the AppInstance was not found") : new DirectoryError("NotFound", false);
  }
  if (name === "ConflictException" || status === 409) {
    return op === "create" ? new DirectoryError("AlreadyExists", false) : new DirectoryError("Unavailable", true, "concurrent change");
  }
  if (name === "ResourceLimitExceededException") return new DirectoryError("LimitExceeded", false, name);
  if (name === "BadRequestException" || (status >= 400 && status < 500)) return new DirectoryError("Rejected", false, name);
  return new DirectoryError("Transport", true, String(err?.message ?? err));
}

/**
 * The Directory port over the Chime SDK Identity client: the same calls, in the same
 * order, as directory.rs's provided methods over chime.rs.
 */
export class ChimeDirectory {
  constructor({ appInstanceArn, budgetMs, maxAttempts }) {
    const { arn, region } = appInstance(appInstanceArn);
    this.arn = arn;
    this.budgetMs = budgetMs;
    // The endpoint comes from AWS_ENDPOINT_URL_CHIME_SDK_IDENTITY, as for the Rust SDK.
    this.client = new ChimeSDKIdentityClient({ region, maxAttempts });
  }

  userArn(id) {
    return `${this.arn}/user/${id}`;
  }

  async call(op, command) {
    try {
      // The whole call, retries included, within the budget (as operation_timeout).
      return await this.client.send(command, { abortSignal: AbortSignal.timeout(this.budgetMs) });
    } catch (err) {
      throw mapError(op, err);
    }
  }

  async create(user) {
    await this.call(
      "create",
      new CreateAppInstanceUserCommand({
        AppInstanceArn: this.arn,
        AppInstanceUserId: user.id,
        Name: user.name,
        Metadata: user.metadata ? user.metadata : undefined,
        ClientRequestToken: `sync-${user.id}`,
      }),
    );
  }

  async describe(id) {
    try {
      const out = await this.call("describe", new DescribeAppInstanceUserCommand({ AppInstanceUserArn: this.userArn(id) }));
      const u = out.AppInstanceUser ?? {};
      return { id, name: u.Name ?? "", metadata: u.Metadata ?? "" };
    } catch (err) {
      if (err.code === "NotFound") return undefined;
      throw err;
    }
  }

  async update(id, name, metadata) {
    await this.call("update", new UpdateAppInstanceUserCommand({ AppInstanceUserArn: this.userArn(id), Name: name, Metadata: metadata }));
  }

  async delete(id) {
    await this.call("delete", new DeleteAppInstanceUserCommand({ AppInstanceUserArn: this.userArn(id) }));
  }

  async reconcile(want, have) {
    const metadata = want.metadata ?? have.metadata;
    if (have.name === want.name && have.metadata === metadata) return "already-provisioned";
    try {
      await this.update(want.id, want.name, metadata);
      return "updated";
    } catch (err) {
      if (err.code !== "NotFound") throw err;
      await this.create(want);
      return "created";
    }
  }

  async createOrResolve(user) {
    try {
      await this.create(user);
      return "created";
    } catch (err) {
      if (err.code !== "AlreadyExists") throw err;
    }
    const existing = await this.describe(user.id);
    if (existing) return this.reconcile(user, existing);
    await this.create(user);
    return "created";
  }

  async upsert(user) {
    const existing = await this.describe(user.id);
    return existing ? this.reconcile(user, existing) : this.createOrResolve(user);
  }

  async ensureExists(user) {
    return (await this.describe(user.id)) ? "already-provisioned" : this.createOrResolve(user);
  }

  async deleteIfPresent(id) {
    try {
      await this.delete(id);
      return "deleted";
    } catch (err) {
      if (err.code === "NotFound") return "already-gone";
      throw err;
    }
  }
}

/** The Queue port over SQS: FIFO fields only on a FIFO queue (as sqs.rs). */
export class SqsQueue {
  constructor(url, timeoutMs) {
    this.url = url;
    this.fifo = url.replace(/\/$/, "").endsWith(".fifo");
    this.timeoutMs = timeoutMs;
    // The endpoint comes from AWS_ENDPOINT_URL_SQS.
    this.client = new SQSClient({});
  }

  async send({ body, groupId, deduplicationId, attributes }) {
    const MessageAttributes = {};
    for (const [k, v] of Object.entries(attributes ?? {})) {
      if (v) MessageAttributes[k] = { DataType: "String", StringValue: v };
    }
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.url,
        MessageBody: body,
        MessageGroupId: this.fifo ? groupId : undefined,
        MessageDeduplicationId: this.fifo ? deduplicationId : undefined,
        MessageAttributes,
      }),
      { abortSignal: AbortSignal.timeout(this.timeoutMs) },
    );
  }
}

/** One JSON log line per decision, no PII (the Rust functions log the same fields). */
export function log(level, fields) {
  const line = JSON.stringify({ timestamp: new Date().toISOString(), level, ...fields });
  if (level === "WARN") console.warn(line);
  else console.log(line);
}
