// Test fixtures: deal properties and associated tasks as the ui-extensions hooks hand them over
// (property values are strings or null; datetimes as epoch milliseconds, dates as YYYY-MM-DD).
// Also used by scripts/screenshot.mjs to render docs/hubspot-card.png.

const BUDGET =
  'Budget: missing \u2014 What budget is set aside for this, roughly how much, and who approves spending it?';
const AUTHORITY =
  'Authority: missing \u2014 Who signs off on this purchase, and can we meet them before the proposal?';
const NEED =
  'Need: shorter than 15 characters \u2014 What problem must this solve, and what does it cost you while it stays unsolved?';

export const REASONS = { BUDGET, AUTHORITY, NEED };

const CHECKED_AT = String(Date.UTC(2026, 10, 30, 6, 15)); // 2026-11-30 06:15 UTC

function deal(overrides) {
  return {
    bant_status: null,
    bant_missing: null,
    bant_score: null,
    bant_checked_at: null,
    bant_flagged_since: null,
    bant_reasons: null,
    bant_snooze_until: null,
    bant_snooze_reason: null,
    ...overrides,
  };
}

/** A POC going ahead without budget, authority and a real need. */
export const POC_UNQUALIFIED = deal({
  bant_status: 'poc_unqualified',
  bant_missing: 'budget;authority;need',
  bant_score: '25',
  bant_checked_at: CHECKED_AT,
  bant_flagged_since: '2026-11-24',
  bant_reasons: [BUDGET, AUTHORITY, NEED].join('\n'),
});

/** A POC whose rep tried to snooze it: POCs cannot be snoozed. */
export const POC_SNOOZE_IGNORED = deal({
  ...POC_UNQUALIFIED,
  bant_snooze_until: '2026-12-20',
  bant_snooze_reason: 'Customer budget cycle starts in January',
  bant_reasons: [
    BUDGET,
    AUTHORITY,
    NEED,
    'Snooze ignored: POCs cannot be snoozed \u2014 every criterion is required before a POC goes ahead',
  ].join('\n'),
});

/** A deal snoozed with a reason: still lists what is missing; its task is completed. */
export const SNOOZED = deal({
  bant_status: 'snoozed',
  bant_missing: 'budget',
  bant_score: '75',
  bant_checked_at: CHECKED_AT,
  bant_flagged_since: '2026-11-10',
  bant_snooze_until: '2026-12-20',
  bant_snooze_reason: 'Customer budget cycle starts in January',
  bant_reasons: [BUDGET, 'Snoozed until 2026-12-20: Customer budget cycle starts in January'].join('\n'),
});

/** A snooze whose date has passed: re-flagged. */
export const SNOOZE_ENDED = deal({
  bant_status: 'needs_qualification',
  bant_missing: 'budget',
  bant_score: '75',
  bant_checked_at: CHECKED_AT,
  bant_flagged_since: '2026-11-10',
  bant_snooze_until: '2026-11-20',
  bant_snooze_reason: 'Customer budget cycle starts in January',
  bant_reasons: [BUDGET, 'Snooze ended on 2026-11-20'].join('\n'),
});

export const NEEDS_QUALIFICATION = deal({
  bant_status: 'needs_qualification',
  bant_missing: 'authority',
  bant_score: '75',
  bant_checked_at: CHECKED_AT,
  bant_flagged_since: '2026-11-28',
  bant_reasons: AUTHORITY,
});

export const QUALIFY_OUT = deal({
  bant_status: 'qualify_out',
  bant_missing: 'budget;authority',
  bant_score: '50',
  bant_checked_at: CHECKED_AT,
  bant_flagged_since: '2026-09-01',
  bant_reasons: [BUDGET, AUTHORITY].join('\n'),
});

export const QUALIFIED = deal({
  bant_status: 'qualified',
  bant_missing: '',
  bant_score: '100',
  bant_checked_at: CHECKED_AT,
  bant_reasons: '',
});

export const NOT_EVALUATED = deal({
  bant_status: 'not_evaluated',
  bant_score: '50',
  bant_checked_at: CHECKED_AT,
});

/** bant-sync has not run on this deal yet: every output is empty (the properties exist). */
export const NEVER_CHECKED = deal({});

/** The portal has no bant_reasons / snooze properties: `bant-sync setup` was not run (HubSpot leaves them out). */
export const SETUP_MISSING = (() => {
  const props = { ...POC_UNQUALIFIED };
  delete props.bant_reasons;
  delete props.bant_snooze_until;
  delete props.bant_snooze_reason;
  return props;
})();

const DUE = String(Date.UTC(2026, 11, 3, 17, 0)); // 2026-12-03

/** The deal's associated tasks (useAssociations results): the open bant-sync task among others. */
export const TASKS = [
  {
    toObjectId: 9001,
    associationTypes: [],
    properties: {
      hs_task_subject: 'Call the customer back',
      hs_timestamp: String(Date.UTC(2026, 11, 1, 9, 0)),
      hs_task_status: 'NOT_STARTED',
      bant_sync_key: null,
    },
  },
  {
    toObjectId: 9002,
    associationTypes: [],
    properties: {
      hs_task_subject: '[bant-sync] Acme renewal: POC without BANT \u2014 confirm Budget, Authority, Need',
      hs_timestamp: DUE,
      hs_task_status: 'NOT_STARTED',
      bant_sync_key: 'bs2-5d41402abc4b2a76-4242',
    },
  },
  {
    toObjectId: 9003,
    associationTypes: [],
    properties: {
      hs_task_subject: '[bant-sync] Acme renewal: confirm Timing',
      hs_timestamp: String(Date.UTC(2026, 9, 1, 9, 0)),
      hs_task_status: 'COMPLETED',
      bant_sync_key: 'bs2-5d41402abc4b2a76~done-9003',
    },
  },
];

/** While snoozed, bant-sync completes the task: nothing open. */
export const TASKS_COMPLETED = TASKS.map((t) =>
  t.properties.bant_sync_key ? { ...t, properties: { ...t.properties, hs_task_status: 'COMPLETED' } } : t,
);

export function propertiesResult(properties, extra = {}) {
  return { properties, error: null, isLoading: false, isRefetching: false, refetch: async () => {}, ...extra };
}

export function associationsResult(results, extra = {}) {
  return {
    results,
    error: null,
    isLoading: false,
    isRefetching: false,
    refetch: async () => {},
    pagination: {
      hasNextPage: false,
      hasPreviousPage: false,
      currentPage: 1,
      pageSize: 100,
      nextPage: () => {},
      previousPage: () => {},
      reset: () => {},
    },
    ...extra,
  };
}
