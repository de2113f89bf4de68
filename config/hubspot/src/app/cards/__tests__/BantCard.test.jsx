import React from 'react';
import { describe, expect, it } from 'vitest';
import {
  Alert,
  DescriptionListItem,
  ErrorState,
  List,
  LoadingSpinner,
  Tag,
  Text,
} from '@hubspot/ui-extensions';
import { createRenderer } from '@hubspot/ui-extensions/testing';
import { BantCard } from '../BantCard.jsx';
import { DEAL_PROPERTIES, TASK_OBJECT_TYPE, TASK_PROPERTIES } from '../bant.js';
import {
  NEEDS_QUALIFICATION,
  NEVER_CHECKED,
  NOT_EVALUATED,
  POC_SNOOZE_IGNORED,
  POC_UNQUALIFIED,
  QUALIFIED,
  QUALIFY_OUT,
  SETUP_MISSING,
  SNOOZED,
  SNOOZE_ENDED,
  TASKS,
  TASKS_COMPLETED,
  associationsResult,
  propertiesResult,
} from './fixtures.js';

/** Render the card with the deal's properties and associated tasks as the hooks would return them. */
function renderCard(properties, { deal = {}, tasks = TASKS, tasksExtra = {} } = {}) {
  const renderer = createRenderer('crm.record.tab');
  renderer.mocks.useCrmProperties.willCall(() => propertiesResult(properties, deal));
  renderer.mocks.useAssociations.willCall(() => associationsResult(tasks, tasksExtra));
  renderer.render(<BantCard />);
  return renderer;
}

/** The value shown in the card's description list under `label`. */
function item(renderer, label) {
  return renderer.find(DescriptionListItem, { label }).find(Text);
}

describe('BantCard: the hooks it calls', () => {
  it('reads the deal properties and the associated tasks with their key and status', () => {
    const renderer = renderCard(POC_UNQUALIFIED);
    expect(renderer.mocks.useCrmProperties.calls[0][0]).toEqual(DEAL_PROPERTIES);
    const [config] = renderer.mocks.useAssociations.calls[0];
    expect(config.toObjectType).toBe(TASK_OBJECT_TYPE);
    expect(config.properties).toEqual(TASK_PROPERTIES);
    expect(config.properties).toEqual(expect.arrayContaining(['bant_sync_key', 'hs_task_status', 'hs_timestamp']));
  });
});

describe('BantCard: status badge', () => {
  it.each([
    ['Qualified', 'success', QUALIFIED],
    ['Needs qualification', 'warning', NEEDS_QUALIFICATION],
    ['POC unqualified', 'error', POC_UNQUALIFIED],
    ['Qualify out', 'error', QUALIFY_OUT],
    ['Not evaluated', 'default', NOT_EVALUATED],
    ['Snoozed', 'info', SNOOZED],
  ])('%s: a %s Tag', (label, variant, properties) => {
    const renderer = renderCard(properties);
    const tag = renderer.findByTestId(Tag, 'bant-status');
    expect(tag.text).toBe(label);
    expect(tag.props.variant).toBe(variant);
  });
});

describe('BantCard: an unqualified POC', () => {
  it('shows the score, each missing criterion with reason and hint, the dates', () => {
    const renderer = renderCard(POC_UNQUALIFIED);
    expect(renderer.findByTestId(Text, 'bant-score').text).toBe('Score 25 / 100');
    const list = renderer.findByTestId(List, 'bant-missing');
    const texts = list.findAll(Text).map((t) => t.text);
    expect(texts).toEqual([
      'Budget: missing',
      'What budget is set aside for this, roughly how much, and who approves spending it?',
      'Authority: missing',
      'Who signs off on this purchase, and can we meet them before the proposal?',
      'Need: shorter than 15 characters',
      'What problem must this solve, and what does it cost you while it stays unsolved?',
    ]);
    expect(list.find(Text, { variant: 'microcopy' }).text).toMatch(/^What budget/);
    expect(item(renderer, 'Unqualified since').text).toBe('2026-11-24');
    expect(item(renderer, 'Checked').text).toBe('2026-11-30 06:15 UTC');
    expect(renderer.maybeFindByTestId(Alert, 'bant-snooze')).toBeNull();
  });

  it('shows the open follow-up task with its due date (not the unkeyed or completed ones)', () => {
    const renderer = renderCard(POC_UNQUALIFIED);
    expect(renderer.findByTestId(Text, 'bant-task').text).toBe(
      '[bant-sync] Acme renewal: POC without BANT — confirm Budget, Authority, Need (due 2026-12-03)',
    );
  });

  it('says so when no follow-up task is open', () => {
    const renderer = renderCard(POC_UNQUALIFIED, { tasks: TASKS_COMPLETED });
    expect(renderer.findByTestId(Text, 'bant-task').text).toBe('No open follow-up task');
  });

  it('says only the first page of tasks was looked at when there are more', () => {
    const renderer = renderCard(POC_UNQUALIFIED, {
      tasks: TASKS_COMPLETED,
      tasksExtra: { pagination: { ...associationsResult([]).pagination, hasNextPage: true } },
    });
    expect(renderer.findByTestId(Text, 'bant-task').text).toBe('No open follow-up task among the first 100 tasks');
  });

  it('a failed task read names the tasks scope and keeps the rest of the card', () => {
    const renderer = renderCard(POC_UNQUALIFIED, {
      tasks: [],
      tasksExtra: { error: new Error('Missing scopes') },
    });
    expect(renderer.findByTestId(Text, 'bant-task-error').text).toContain('crm.objects.contacts.read');
    expect(renderer.findByTestId(Tag, 'bant-status').text).toBe('POC unqualified');
  });

  it('shows a spinner in the task row while the tasks load', () => {
    const renderer = renderCard(POC_UNQUALIFIED, { tasks: [], tasksExtra: { isLoading: true } });
    expect(renderer.find(DescriptionListItem, { label: 'Follow-up task' }).find(LoadingSpinner).props.label).toBe('Looking for the follow-up task');
  });
});

describe('BantCard: snooze', () => {
  it('snoozed: the snooze line from the snooze fields, still the missing list, the task completed', () => {
    const renderer = renderCard(SNOOZED, { tasks: TASKS_COMPLETED });
    const alert = renderer.findByTestId(Alert, 'bant-snooze');
    expect(alert.props.title).toBe('Snoozed');
    expect(alert.props.variant).toBe('info');
    expect(alert.text).toBe('Snoozed until 2026-12-20 — Customer budget cycle starts in January');
    expect(renderer.findByTestId(List, 'bant-missing').findAll(Text)[0].text).toBe('Budget: missing');
    expect(renderer.findByTestId(Text, 'bant-task').text).toBe(
      'None: the task is completed while the deal is snoozed',
    );
  });

  it('snooze ignored on a POC: the reason why, as a warning; the deal stays POC unqualified', () => {
    const renderer = renderCard(POC_SNOOZE_IGNORED);
    const alert = renderer.findByTestId(Alert, 'bant-snooze');
    expect(alert.props.title).toBe('Snooze ignored');
    expect(alert.props.variant).toBe('warning');
    expect(alert.text).toBe(
      'Snooze ignored: POCs cannot be snoozed — every criterion is required before a POC goes ahead',
    );
    expect(renderer.findByTestId(Tag, 'bant-status').text).toBe('POC unqualified');
    // the snooze line is not listed as a missing criterion
    expect(renderer.findByTestId(List, 'bant-missing').findAll(Text)).toHaveLength(6);
  });

  it('an ended snooze says when it ended', () => {
    const renderer = renderCard(SNOOZE_ENDED);
    const alert = renderer.findByTestId(Alert, 'bant-snooze');
    expect(alert.props.title).toBe('Snooze ended');
    expect(alert.text).toBe('Snooze ended on 2026-11-20');
  });
});

describe('BantCard: qualified and not evaluated', () => {
  it('a qualified deal lists nothing missing and has no task row', () => {
    const renderer = renderCard(QUALIFIED);
    expect(renderer.maybeFindByTestId(List, 'bant-missing')).toBeNull();
    expect(renderer.findByTestId(Text, 'bant-all-met').text).toBe('Every criterion is met.');
    expect(renderer.maybeFind(DescriptionListItem, { label: 'Follow-up task' })).toBeNull();
    expect(renderer.findByTestId(Text, 'bant-score').text).toBe('Score 100 / 100');
  });

  it('a deal not evaluated says nothing is required', () => {
    const renderer = renderCard(NOT_EVALUATED);
    expect(renderer.findByTestId(Text, 'bant-all-met').text).toBe('Nothing is required of this deal at its stage.');
  });
});

describe('BantCard: loading, errors, never checked', () => {
  it('loading: a spinner and nothing else', () => {
    const renderer = renderCard({}, { deal: { isLoading: true } });
    expect(renderer.find(LoadingSpinner).props.label).toBe('Loading BANT qualification');
    expect(renderer.maybeFind(Tag)).toBeNull();
  });

  it('error: a clear message naming the deals scope and the setup command', () => {
    const renderer = renderCard({}, { deal: { error: new Error('Request failed with status 403') } });
    expect(renderer.find(ErrorState).props.title).toBe('BANT qualification could not be loaded');
    const text = renderer.findByTestId(Text, 'bant-error').text;
    expect(text).toContain('(Request failed with status 403)');
    expect(text).toContain('crm.objects.deals.read');
    expect(text).toContain('run `bant-sync setup --connection NAME`');
    expect(renderer.maybeFind(Tag)).toBeNull();
  });

  it('properties missing from the account: names them and the setup command', () => {
    const renderer = renderCard(SETUP_MISSING);
    expect(renderer.find(ErrorState).props.title).toBe('bant-sync is not set up in this account');
    expect(renderer.findByTestId(Text, 'bant-error').text).toBe(
      'The deal properties do not exist in this HubSpot account: bant_reasons, bant_snooze_until, bant_snooze_reason. ' +
        "Run `bant-sync setup --connection NAME` (NAME: your HubSpot connection in bant-sync's config) to create them.",
    );
  });

  it('never checked: says bant-sync has not checked the deal yet', () => {
    const renderer = renderCard(NEVER_CHECKED);
    expect(renderer.findByTestId(Tag, 'bant-status').text).toBe('Not checked yet');
    expect(renderer.findByTestId(Tag, 'bant-status').props.variant).toBe('default');
    expect(renderer.findByTestId(Text, 'bant-never-checked').text).toMatch(/has not checked this deal yet/);
    expect(renderer.maybeFindByTestId(List, 'bant-missing')).toBeNull();
  });
});
