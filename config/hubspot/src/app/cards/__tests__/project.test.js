// The HubSpot project files agree with the card and with the issue-14 contract.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEAL_PROPERTIES, SCOPES, TASK_PROPERTIES } from '../bant.js';

const cards = join(dirname(fileURLToPath(import.meta.url)), '..');
const project = join(cards, '..', '..', '..');
const json = (path) => JSON.parse(readFileSync(path, 'utf8'));

describe('HubSpot project files', () => {
  const hsproject = json(join(project, 'hsproject.json'));
  const app = json(join(project, 'src', 'app', 'app-hsmeta.json'));
  const card = json(join(cards, 'bant-card-hsmeta.json'));

  it('hsproject.json: src dir and a dated platform version', () => {
    expect(hsproject.srcDir).toBe('src');
    expect(hsproject.platformVersion).toBe('2026.03');
  });

  it('the app asks for exactly the scopes the card reads with', () => {
    expect(app.type).toBe('app');
    expect(app.config.distribution).toBe('private');
    expect(app.config.auth.type).toBe('static');
    expect([...app.config.auth.requiredScopes].sort()).toEqual(['oauth', SCOPES.tasks, SCOPES.deals].sort());
  });

  it('the card: "BANT qualification" on deal records, entrypoint exists', () => {
    expect(card.type).toBe('card');
    expect(card.config.name).toBe('BANT qualification');
    expect(card.config.objectTypes).toEqual(['deals']);
    expect(['crm.record.tab', 'crm.record.sidebar']).toContain(card.config.location);
    expect(card.config.entrypoint.startsWith('/app/cards/')).toBe(true);
    expect(existsSync(join(project, 'src', card.config.entrypoint))).toBe(true);
  });

  it('uids are unique', () => {
    expect(app.uid).not.toBe(card.uid);
  });

  it('reads the contract property names', () => {
    expect(DEAL_PROPERTIES).toEqual([
      'bant_status', 'bant_missing', 'bant_score', 'bant_checked_at', 'bant_flagged_since',
      'bant_reasons', 'bant_snooze_until', 'bant_snooze_reason',
    ]);
    expect(TASK_PROPERTIES).toEqual(['hs_task_subject', 'hs_timestamp', 'hs_task_status', 'bant_sync_key']);
  });

  it('pins the ui-extensions version the tests ran against, with its React', () => {
    const pkg = json(join(cards, 'package.json'));
    const installed = json(join(cards, 'node_modules', '@hubspot', 'ui-extensions', 'package.json'));
    expect(pkg.dependencies['@hubspot/ui-extensions']).toBe(installed.version);
    expect(pkg.dependencies.react).toBe(installed.peerDependencies.react);
  });
});
