// The screenshot's HTML (scripts/card-html.js) shows what the card renders.
import React from 'react';
import { describe, expect, it } from 'vitest';
import { Tag } from '@hubspot/ui-extensions';
import { createRenderer } from '@hubspot/ui-extensions/testing';
import { BantCard } from '../BantCard.jsx';
import { page, toHtml } from '../../../../scripts/card-html.js';
import { POC_UNQUALIFIED, TASKS, associationsResult, propertiesResult } from './fixtures.js';

function rendered(deal) {
  const renderer = createRenderer('crm.record.tab');
  renderer.mocks.useCrmProperties.willCall(() => propertiesResult(deal));
  renderer.mocks.useAssociations.willCall(() => associationsResult(TASKS));
  return renderer.render(<BantCard />);
}

describe('card-html', () => {
  it('maps the rendered card to HTML: red tag, reasons and hints, task, dates', () => {
    const html = toHtml(rendered(POC_UNQUALIFIED));
    expect(html).toMatch(/<span class="tag" style="background:#fde8e9;border-color:#f2545b;[^"]*">POC unqualified<\/span>/);
    expect(html).toContain('<p class="text demibold">Budget: missing</p>');
    expect(html).toContain('<p class="text micro">What budget is set aside for this');
    expect(html).toContain('(due 2026-12-03)');
    expect(html).toContain('<dt>Unqualified since</dt>');
    expect(page('BANT qualification', [{ dealName: 'Acme <POC>', caption: 'x', html }])).toContain('Acme &lt;POC&gt;');
  });

  it('refuses a component it has no mapping for', () => {
    const renderer = createRenderer('crm.record.tab');
    const root = renderer.render(<Tag>ok</Tag>);
    expect(() => toHtml({ ...root.childNodes[0], name: 'Mystery' })).toThrow(/no HTML mapping for the component Mystery/);
  });
});
