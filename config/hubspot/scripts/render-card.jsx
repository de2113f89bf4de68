// Renders the BANT qualification card with the test fixtures through @hubspot/ui-extensions/testing and
// writes a static HTML page of it (see card-html.js). Bundled and run by screenshot.mjs.
import React from 'react';
import { writeFileSync } from 'node:fs';
import { createRenderer } from '@hubspot/ui-extensions/testing';
import { BantCard } from '../src/app/cards/BantCard.jsx';
import {
  POC_UNQUALIFIED,
  SNOOZED,
  TASKS,
  TASKS_COMPLETED,
  associationsResult,
  propertiesResult,
} from '../src/app/cards/__tests__/fixtures.js';
import { page, toHtml } from './card-html.js';

const SCENARIOS = [
  { dealName: 'Acme renewal', caption: 'POC without BANT, open follow-up task', deal: POC_UNQUALIFIED, tasks: TASKS },
  { dealName: 'Globex expansion', caption: 'snoozed with a reason', deal: SNOOZED, tasks: TASKS_COMPLETED },
];

function renderScenario({ deal, tasks }) {
  const renderer = createRenderer('crm.record.tab');
  renderer.mocks.useCrmProperties.willCall(() => propertiesResult(deal));
  renderer.mocks.useAssociations.willCall(() => associationsResult(tasks));
  return toHtml(renderer.render(<BantCard />));
}

const out = process.argv[2];
if (!out) {
  throw new Error('usage: render-card.mjs OUTPUT.html');
}
const scenarios = SCENARIOS.map((s) => ({ ...s, html: renderScenario(s) }));
writeFileSync(out, page('BANT qualification', scenarios));
console.log(`wrote ${out}`);
