// Node.js 20 equivalent of the post-confirmation function (crates/post-confirmation and
// chime-sync-core's handlers/post_confirmation.rs), for BENCHMARKS.md: the same
// environment variables, the same Chime calls (Describe first; CreateAppInstanceUser with a
// deterministic ClientRequestToken when missing, Update when renamed), the same hand-off to the sync
// queue when Chime fails or is slower than CHIME_BUDGET_MS, and the event returned
// unchanged. Handler: `post-confirmation.handler`.

import {
  ChimeDirectory,
  DEFAULT_NAME_POLICY,
  InputError,
  SqsQueue,
  displayNamePolicy,
  log,
  number,
  parseDisplayName,
  parseUserId,
  queueUrl,
  required,
} from "./shared.mjs";

const SOURCE = "post-confirmation";
const QUEUE_TIMEOUT_MS = 1500;

// Built once per sandbox, at module load (the init phase), as in main.rs.
const budgetMs = number("CHIME_BUDGET_MS", 3000, 100, 4000);
const directory = new ChimeDirectory({
  appInstanceArn: required("APP_INSTANCE_ARN"),
  budgetMs,
  maxAttempts: number("CHIME_MAX_ATTEMPTS", 4, 1, 10),
});
const syncQueue = new SqsQueue(queueUrl("SYNC_QUEUE_URL"), QUEUE_TIMEOUT_MS);
const deriveName = displayNamePolicy(process.env.DISPLAY_NAME_ATTRIBUTES?.trim() || DEFAULT_NAME_POLICY);

const SOURCES = {
  PostConfirmation_ConfirmSignUp: "ConfirmSignUp",
  PostConfirmation_ConfirmForgotPassword: "ConfirmForgotPassword",
};

export const handler = async (event, context) => {
  const trigger = SOURCES[event?.triggerSource];
  if (!trigger) {
    log("WARN", { source: SOURCE, trigger: event?.triggerSource ?? "<missing>", outcome: "passed-through" });
    return event;
  }
  const attributes = event?.request?.userAttributes ?? {};
  let sub;
  try {
    if (attributes.sub === undefined) throw new InputError("MissingField", "request.userAttributes.sub is missing");
    sub = parseUserId(attributes.sub);
  } catch (err) {
    log("WARN", { source: SOURCE, outcome: "invalid-event", reason: err.code });
    throw new Error(`the confirmation event could not be read: ${err.message}`);
  }
  const name = deriveName(attributes) ?? parseDisplayName(sub);
  const profile = { id: sub, name, metadata: undefined };

  // Chime gets what is left of the deadline after the hand-off reserve, at most the budget.
  const left = context.getRemainingTimeInMillis() - QUEUE_TIMEOUT_MS;
  directory.budgetMs = Math.max(0, Math.min(budgetMs, left));
  let chimeError;
  try {
    // Reads first, as the Rust handler does: a new user is a Describe (404) and a Create.
    const applied = trigger === "ConfirmSignUp" ? await directory.upsert(profile) : await directory.ensureExists(profile);
    log("INFO", { source: SOURCE, sub, trigger, outcome: applied });
    return event;
  } catch (err) {
    chimeError = err;
  }

  const eventId = `cognito-confirm-${sub}`;
  try {
    await syncQueue.send({
      body: JSON.stringify({
        version: 1,
        type: "user.created",
        eventId,
        occurredAt: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
        user: { sub, displayName: name },
      }),
      groupId: sub,
      deduplicationId: eventId,
      attributes: { Source: SOURCE },
    });
    log("WARN", { source: SOURCE, sub, trigger, outcome: "handed-off", chime_error: chimeError.code });
    return event;
  } catch (queueError) {
    log("ERROR", { source: SOURCE, sub, trigger, outcome: "failed", chime_error: chimeError.code, queue_error: String(queueError) });
    throw new Error("the chat account could not be created or queued; please retry");
  }
};
