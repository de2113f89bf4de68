// Pure presentation logic for the "BANT qualification" deal card: no HubSpot, no React.
// Everything the card shows is decided here so it can be unit-tested without HubSpot.
// Names, status values and the bant_reasons format are fixed by the issue-14 contract.

/** Deal properties the card reads (all written by bant-sync, inputs edited by reps). */
export const DEAL_PROPERTIES = [
  'bant_status',
  'bant_missing',
  'bant_score',
  'bant_checked_at',
  'bant_flagged_since',
  'bant_reasons',
  'bant_snooze_until',
  'bant_snooze_reason',
];

/** Task properties the card reads from the deal's associated tasks. */
export const TASK_PROPERTIES = ['hs_task_subject', 'hs_timestamp', 'hs_task_status', 'bant_sync_key'];

/** HubSpot's object type id for tasks (used by useAssociations). */
export const TASK_OBJECT_TYPE = '0-27';

/** Scopes the app needs, and which part of the card needs each. */
export const SCOPES = {
  deals: 'crm.objects.deals.read',
  tasks: 'crm.objects.contacts.read',
};

/**
 * Status values in contract order: API value, label, Tag variant.
 * Tag variants available in @hubspot/ui-extensions: default (grey), warning (amber), success (green),
 * error (red), info (blue). Tag has a single red, so poc_unqualified and qualify_out are both "error";
 * their labels tell them apart.
 */
export const STATUSES = [
  { value: 'qualified', label: 'Qualified', variant: 'success' },
  { value: 'needs_qualification', label: 'Needs qualification', variant: 'warning' },
  { value: 'poc_unqualified', label: 'POC unqualified', variant: 'error' },
  { value: 'qualify_out', label: 'Qualify out', variant: 'error' },
  { value: 'not_evaluated', label: 'Not evaluated', variant: 'default' },
  { value: 'snoozed', label: 'Snoozed', variant: 'info' },
];

const UNQUALIFIED = new Set(['needs_qualification', 'poc_unqualified', 'qualify_out', 'snoozed']);

const EM_DASH_SEPARATOR = ' \u2014 ';

function blank(value) {
  return value === null || value === undefined || String(value).trim() === '';
}

/** The badge for a status value: {label, variant}; null when the deal was never checked. */
export function statusBadge(status) {
  if (blank(status)) {
    return null;
  }
  const value = String(status).trim();
  const known = STATUSES.find((s) => s.value === value);
  if (known) {
    return { label: known.label, variant: known.variant };
  }
  // A value this card does not know (e.g. a newer bant-sync): show it as is, grey.
  return { label: value, variant: 'default' };
}

/** True for the statuses that mean "something is missing" (the card then lists it). */
export function isUnqualified(status) {
  return UNQUALIFIED.has(String(status ?? '').trim());
}

/** `bant_missing` (a `;`-list) as its parts, stripped, empty parts dropped. */
export function parseMissing(text) {
  if (blank(text)) {
    return [];
  }
  return String(text)
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

const SNOOZE_PREFIXES = [
  { kind: 'active', re: /^Snoozed until (\d{4}-\d{2}-\d{2}):\s*(.*)$/ },
  { kind: 'ignored', re: /^Snooze ignored:\s*(.*)$/ },
  { kind: 'ended', re: /^Snooze ended on (\d{4}-\d{2}-\d{2})\s*$/ },
];

function parseSnoozeNote(line) {
  for (const { kind, re } of SNOOZE_PREFIXES) {
    const m = line.match(re);
    if (!m) {
      continue;
    }
    if (kind === 'active') {
      return { kind, text: line, until: m[1], detail: m[2].trim() };
    }
    if (kind === 'ignored') {
      return { kind, text: line, until: null, detail: m[1].trim() };
    }
    return { kind, text: line, until: m[1], detail: '' };
  }
  return null;
}

/**
 * Parse `bant_reasons`: one line per missing criterion, `<reason> — <hint>` (split on the FIRST
 * " — "), `<reason>` starting with the criterion label and a colon; optionally one final snooze line.
 * Returns {criteria: [{label, reason, hint}], snooze: {kind, text, until, detail} | null}.
 */
export function parseReasons(text) {
  const result = { criteria: [], snooze: null };
  if (blank(text)) {
    return result;
  }
  const lines = String(text)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  for (const line of lines) {
    const note = parseSnoozeNote(line);
    if (note) {
      result.snooze = note;
      continue;
    }
    const cut = line.indexOf(EM_DASH_SEPARATOR);
    const reason = cut === -1 ? line : line.slice(0, cut).trim();
    const hint = cut === -1 ? '' : line.slice(cut + EM_DASH_SEPARATOR.length).trim();
    const colon = reason.indexOf(':');
    const label = colon === -1 ? reason : reason.slice(0, colon).trim();
    result.criteria.push({ label, reason, hint });
  }
  return result;
}

function sameCriterion(a, b) {
  return String(a).trim().toLowerCase() === String(b).trim().toLowerCase();
}

/**
 * What the card lists as missing: every reason line (reason + hint), then any criterion named in
 * `bant_missing` that has no reason line (shown as "<name>: missing", no hint).
 */
export function missingCriteria(properties) {
  const { criteria } = parseReasons(properties.bant_reasons);
  const items = criteria.map((c) => ({ ...c }));
  for (const name of parseMissing(properties.bant_missing)) {
    if (!items.some((item) => sameCriterion(item.label, name))) {
      const label = name.charAt(0).toUpperCase() + name.slice(1);
      items.push({ label, reason: `${label}: missing`, hint: '' });
    }
  }
  return items;
}

/**
 * A HubSpot date/datetime value as a Date. HubSpot hands property values over as strings: epoch
 * milliseconds ("1764489600000"), an ISO date ("2026-12-20") or an ISO datetime. null when unreadable.
 */
export function toDate(value) {
  if (blank(value)) {
    return null;
  }
  const text = String(value).trim();
  let date;
  if (/^-?\d+$/.test(text)) {
    date = new Date(Number(text));
  } else if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    date = new Date(`${text}T00:00:00Z`);
  } else {
    date = new Date(text);
  }
  return Number.isNaN(date.getTime()) ? null : date;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** A date property as YYYY-MM-DD (HubSpot stores dates at midnight UTC). Unreadable text is shown as is. */
export function formatDate(value) {
  const date = toDate(value);
  if (!date) {
    return blank(value) ? '' : String(value);
  }
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/** A datetime property as "YYYY-MM-DD HH:MM UTC". Unreadable text is shown as is. */
export function formatDateTime(value) {
  const date = toDate(value);
  if (!date) {
    return blank(value) ? '' : String(value);
  }
  return `${formatDate(value)} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`;
}

/** The score as "NN / 100"; '' when unset. */
export function formatScore(value) {
  if (blank(value)) {
    return '';
  }
  const n = Number(value);
  if (Number.isNaN(n)) {
    return String(value);
  }
  return `${Math.round(n)} / 100`;
}

/**
 * The snooze line the card shows, or null.
 * - status `snoozed`: "Snoozed until <bant_snooze_until> — <bant_snooze_reason>" (kind 'active');
 * - snooze fields set but status not snoozed: the reasons field's snooze line ("Snooze ignored: …" /
 *   "Snooze ended on …"), or, before bant-sync has looked at it, a note that it is not checked yet;
 * - no snooze fields: a reasons-field snooze line if there is one (e.g. an ended snooze), else null.
 */
export function snoozeLine(properties) {
  const status = String(properties.bant_status ?? '').trim();
  const until = formatDate(properties.bant_snooze_until);
  const reason = blank(properties.bant_snooze_reason) ? '' : String(properties.bant_snooze_reason).trim();
  const note = parseReasons(properties.bant_reasons).snooze;

  if (status === 'snoozed') {
    const shownUntil = until || note?.until || '';
    const shownReason = reason || note?.detail || '';
    const text = shownReason
      ? `Snoozed until ${shownUntil}${EM_DASH_SEPARATOR}${shownReason}`
      : `Snoozed until ${shownUntil}`;
    return { kind: 'active', text };
  }
  if (note && note.kind !== 'active') {
    return { kind: note.kind, text: note.text };
  }
  if (until || reason) {
    const what = until ? `Snooze until ${until}` : 'Snooze reason set without a date';
    return {
      kind: 'pending',
      text: `${what}${reason ? EM_DASH_SEPARATOR + reason : ''}: not checked by bant-sync yet (it applies at the next run if it follows the snooze rules)`,
    };
  }
  return null;
}

/**
 * The open follow-up task among the deal's associated tasks (useAssociations results): a task with
 * `bant_sync_key` set whose `hs_task_status` is not COMPLETED. The earliest due wins if there are several.
 * Returns {id, subject, due} or null.
 */
export function openFollowUpTask(associationResults) {
  const open = (associationResults ?? [])
    .filter((r) => r && r.properties)
    .filter((r) => !blank(r.properties.bant_sync_key))
    .filter((r) => String(r.properties.hs_task_status ?? '').toUpperCase() !== 'COMPLETED');
  if (open.length === 0) {
    return null;
  }
  const dueMs = (r) => toDate(r.properties.hs_timestamp)?.getTime() ?? Number.POSITIVE_INFINITY;
  open.sort((a, b) => dueMs(a) - dueMs(b));
  const task = open[0];
  return {
    id: task.toObjectId,
    subject: blank(task.properties.hs_task_subject) ? '(no subject)' : task.properties.hs_task_subject,
    due: formatDate(task.properties.hs_timestamp),
  };
}

/**
 * Output properties HubSpot left out of the answer. HubSpot's CRM API omits a requested property that does
 * not exist and returns an empty one as null (useCrmProperties types its values `string | null`), so an
 * absent key means `bant-sync setup` has not created that property in this account.
 */
export function absentProperties(properties, names = DEAL_PROPERTIES) {
  return names.filter((name) => !Object.prototype.hasOwnProperty.call(properties ?? {}, name));
}

/** The message for a setup problem: which properties are missing and how to create them. */
export function setupMessage(missing) {
  const list = missing.join(', ');
  const noun = missing.length === 1 ? 'property does' : 'properties do';
  return `The deal ${noun} not exist in this HubSpot account: ${list}. Run \`bant-sync setup --connection NAME\` (NAME: your HubSpot connection in bant-sync's config) to create them.`;
}

/** The message for a failed read (the hook's error), naming the scope the app needs. */
export function readErrorMessage(what, error) {
  const scope = what === 'tasks' ? SCOPES.tasks : SCOPES.deals;
  const detail = error && error.message ? ` (${error.message})` : '';
  const subject = what === 'tasks' ? "the deal's tasks" : "the deal's BANT properties";
  return `Could not read ${subject}${detail}. The app needs the scope ${scope}; if the bant_* properties are missing, run \`bant-sync setup --connection NAME\`.`;
}

/**
 * Everything the card shows for a loaded deal, as plain data.
 * state: 'never-checked' (no bant_status yet) or 'checked'.
 */
export function cardModel(properties, taskResults = []) {
  const status = blank(properties.bant_status) ? '' : String(properties.bant_status).trim();
  const snooze = snoozeLine(properties);
  if (!status) {
    return { state: 'never-checked', snooze, badge: null };
  }
  return {
    state: 'checked',
    status,
    badge: statusBadge(status),
    score: formatScore(properties.bant_score),
    missing: missingCriteria(properties),
    unqualified: isUnqualified(status),
    task: openFollowUpTask(taskResults),
    snooze,
    checkedAt: formatDateTime(properties.bant_checked_at),
    flaggedSince: formatDate(properties.bant_flagged_since),
  };
}
