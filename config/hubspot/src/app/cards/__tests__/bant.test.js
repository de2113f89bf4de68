import { describe, expect, it } from 'vitest';
import {
  DEAL_PROPERTIES,
  STATUSES,
  absentProperties,
  cardModel,
  formatDate,
  formatDateTime,
  formatScore,
  missingCriteria,
  openFollowUpTask,
  parseMissing,
  parseReasons,
  readErrorMessage,
  setupMessage,
  snoozeLine,
  statusBadge,
} from '../bant.js';
import {
  NEVER_CHECKED,
  POC_SNOOZE_IGNORED,
  POC_UNQUALIFIED,
  REASONS,
  SETUP_MISSING,
  SNOOZED,
  SNOOZE_ENDED,
  TASKS,
  TASKS_COMPLETED,
} from './fixtures.js';

describe('statusBadge', () => {
  it.each([
    ['qualified', 'Qualified', 'success'],
    ['needs_qualification', 'Needs qualification', 'warning'],
    ['poc_unqualified', 'POC unqualified', 'error'],
    ['qualify_out', 'Qualify out', 'error'],
    ['not_evaluated', 'Not evaluated', 'default'],
    ['snoozed', 'Snoozed', 'info'],
  ])('%s -> %s (%s)', (value, label, variant) => {
    expect(statusBadge(value)).toEqual({ label, variant });
  });

  it('keeps the contract order of statuses (snoozed last)', () => {
    expect(STATUSES.map((s) => s.value)).toEqual([
      'qualified',
      'needs_qualification',
      'poc_unqualified',
      'qualify_out',
      'not_evaluated',
      'snoozed',
    ]);
  });

  it('has no badge for a deal never checked, and a grey one for an unknown value', () => {
    expect(statusBadge(null)).toBeNull();
    expect(statusBadge('  ')).toBeNull();
    expect(statusBadge('future_status')).toEqual({ label: 'future_status', variant: 'default' });
  });
});

describe('parseMissing', () => {
  it('splits the ;-list, strips parts and drops empty ones', () => {
    expect(parseMissing(' budget ; ;authority;')).toEqual(['budget', 'authority']);
    expect(parseMissing(null)).toEqual([]);
    expect(parseMissing('')).toEqual([]);
  });
});

describe('parseReasons', () => {
  it('splits each line on the FIRST " — " into reason and hint, label before the colon', () => {
    const text = 'Need: shorter than 15 characters — What problem — exactly — must this solve?';
    expect(parseReasons(text).criteria).toEqual([
      {
        label: 'Need',
        reason: 'Need: shorter than 15 characters',
        hint: 'What problem — exactly — must this solve?',
      },
    ]);
  });

  it('reads the contract example lines in order, CRLF or LF', () => {
    const parsed = parseReasons([REASONS.BUDGET, REASONS.NEED].join('\r\n'));
    expect(parsed.criteria.map((c) => c.label)).toEqual(['Budget', 'Need']);
    expect(parsed.criteria[0].reason).toBe('Budget: missing');
    expect(parsed.criteria[0].hint).toBe(
      'What budget is set aside for this, roughly how much, and who approves spending it?',
    );
    expect(parsed.snooze).toBeNull();
  });

  it('does not split on a plain hyphen or an em dash without spaces', () => {
    const parsed = parseReasons('Timing: date in the past - 2026-01-01—soon');
    expect(parsed.criteria[0]).toEqual({
      label: 'Timing',
      reason: 'Timing: date in the past - 2026-01-01—soon',
      hint: '',
    });
  });

  it('recognises the three snooze lines and keeps them out of the criteria', () => {
    const active = parseReasons(`${REASONS.BUDGET}\nSnoozed until 2026-12-20: Customer budget cycle`);
    expect(active.criteria).toHaveLength(1);
    expect(active.snooze).toMatchObject({ kind: 'active', until: '2026-12-20', detail: 'Customer budget cycle' });

    const ignored = parseReasons(`${REASONS.BUDGET}\nSnooze ignored: POCs cannot be snoozed — every criterion is required`);
    expect(ignored.criteria).toHaveLength(1);
    expect(ignored.snooze).toMatchObject({
      kind: 'ignored',
      detail: 'POCs cannot be snoozed — every criterion is required',
    });

    const ended = parseReasons('Snooze ended on 2026-12-20');
    expect(ended.criteria).toEqual([]);
    expect(ended.snooze).toMatchObject({ kind: 'ended', until: '2026-12-20' });
  });

  it('is empty for an empty or null field', () => {
    expect(parseReasons('')).toEqual({ criteria: [], snooze: null });
    expect(parseReasons(null)).toEqual({ criteria: [], snooze: null });
  });
});

describe('missingCriteria', () => {
  it('lists every reason line with its hint', () => {
    const items = missingCriteria(POC_UNQUALIFIED);
    expect(items.map((i) => i.reason)).toEqual([
      'Budget: missing',
      'Authority: missing',
      'Need: shorter than 15 characters',
    ]);
    expect(items[2].hint).toBe('What problem must this solve, and what does it cost you while it stays unsolved?');
  });

  it('adds a criterion named in bant_missing that has no reason line', () => {
    const items = missingCriteria({ bant_missing: 'budget;timing', bant_reasons: REASONS.BUDGET });
    expect(items.map((i) => i.label)).toEqual(['Budget', 'Timing']);
    expect(items[1]).toEqual({ label: 'Timing', reason: 'Timing: missing', hint: '' });
  });
});

describe('dates and score', () => {
  it('reads epoch milliseconds, ISO dates and ISO datetimes', () => {
    expect(formatDate(String(Date.UTC(2026, 11, 20)))).toBe('2026-12-20');
    expect(formatDate('2026-12-20')).toBe('2026-12-20');
    expect(formatDateTime('2026-11-30T06:15:00.000Z')).toBe('2026-11-30 06:15 UTC');
    expect(formatDateTime(String(Date.UTC(2026, 10, 30, 6, 15)))).toBe('2026-11-30 06:15 UTC');
    expect(formatDate(null)).toBe('');
    expect(formatDate('someday')).toBe('someday');
  });

  it('shows the score out of 100', () => {
    expect(formatScore('25')).toBe('25 / 100');
    expect(formatScore('66.7')).toBe('67 / 100');
    expect(formatScore(null)).toBe('');
  });
});

describe('snoozeLine', () => {
  it('status snoozed: until and reason from the snooze fields', () => {
    expect(snoozeLine(SNOOZED)).toEqual({
      kind: 'active',
      text: 'Snoozed until 2026-12-20 — Customer budget cycle starts in January',
    });
  });

  it('snooze fields set, status not snoozed: the reasons field says why it was ignored', () => {
    expect(snoozeLine(POC_SNOOZE_IGNORED)).toEqual({
      kind: 'ignored',
      text: 'Snooze ignored: POCs cannot be snoozed — every criterion is required before a POC goes ahead',
    });
  });

  it('an expired snooze says when it ended', () => {
    expect(snoozeLine(SNOOZE_ENDED)).toEqual({ kind: 'ended', text: 'Snooze ended on 2026-11-20' });
  });

  it('a snooze bant-sync has not seen yet is shown as not checked', () => {
    const line = snoozeLine({ ...POC_UNQUALIFIED, bant_snooze_until: '2026-12-20', bant_snooze_reason: 'Waiting on legal' });
    expect(line.kind).toBe('pending');
    expect(line.text).toMatch(/^Snooze until 2026-12-20 — Waiting on legal: not checked by bant-sync yet/);
  });

  it('no snooze: nothing', () => {
    expect(snoozeLine(POC_UNQUALIFIED)).toBeNull();
  });
});

describe('openFollowUpTask', () => {
  it('picks the associated task with bant_sync_key set that is not COMPLETED', () => {
    expect(openFollowUpTask(TASKS)).toEqual({
      id: 9002,
      subject: '[bant-sync] Acme renewal: POC without BANT — confirm Budget, Authority, Need',
      due: '2026-12-03',
    });
  });

  it('ignores tasks without a key and completed ones', () => {
    expect(openFollowUpTask(TASKS_COMPLETED)).toBeNull();
    expect(openFollowUpTask([TASKS[0]])).toBeNull();
    expect(openFollowUpTask([])).toBeNull();
    expect(openFollowUpTask(undefined)).toBeNull();
  });
});

describe('setup and read errors', () => {
  it('names the output properties HubSpot left out', () => {
    expect(absentProperties(SETUP_MISSING)).toEqual(['bant_reasons', 'bant_snooze_until', 'bant_snooze_reason']);
    expect(absentProperties(NEVER_CHECKED)).toEqual([]);
    expect(absentProperties({})).toEqual(DEAL_PROPERTIES);
  });

  it('tells the admin to run setup, naming the properties', () => {
    const msg = setupMessage(['bant_reasons']);
    expect(msg).toContain('The deal property does not exist in this HubSpot account: bant_reasons.');
    expect(msg).toContain('`bant-sync setup --connection NAME`');
  });

  it('names the scope the failed read needs', () => {
    expect(readErrorMessage('deal', new Error('403 Forbidden'))).toContain('crm.objects.deals.read');
    expect(readErrorMessage('deal', new Error('403 Forbidden'))).toContain('(403 Forbidden)');
    expect(readErrorMessage('tasks', new Error('x'))).toContain('crm.objects.contacts.read');
    expect(readErrorMessage('deal', null)).toContain('bant-sync setup --connection NAME');
  });
});

describe('cardModel', () => {
  it('a deal never checked has no status', () => {
    expect(cardModel(NEVER_CHECKED, TASKS)).toEqual({ state: 'never-checked', snooze: null, badge: null });
  });

  it('an unqualified POC: badge, score, missing, task, dates', () => {
    const model = cardModel(POC_UNQUALIFIED, TASKS);
    expect(model).toMatchObject({
      state: 'checked',
      badge: { label: 'POC unqualified', variant: 'error' },
      score: '25 / 100',
      unqualified: true,
      task: { due: '2026-12-03' },
      snooze: null,
      checkedAt: '2026-11-30 06:15 UTC',
      flaggedSince: '2026-11-24',
    });
    expect(model.missing).toHaveLength(3);
  });
});
