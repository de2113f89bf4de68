/**
 * Renders bantPanel with the Jest fixtures (an unqualified POC with its open task and an ignored snooze, and a
 * snoozed deal) and writes build/salesforce-panel.html: the component's DOM flattened out of its shadow root,
 * styled with the Salesforce Lightning Design System stylesheet and the component's own CSS.
 * Run through scripts/screenshot.sh, which turns the page into docs/salesforce-panel.png with headless Chromium.
 */
import fs from 'fs';
import path from 'path';
import { createElement } from 'lwc';
import BantPanel from 'c/bantPanel';
import { getRecord } from 'lightning/uiRecordApi';
import { graphql } from 'lightning/uiGraphQLApi';

const ROOT = path.resolve(__dirname, '..');
const DATA = path.join(ROOT, 'force-app/main/default/lwc/bantPanel/__tests__/data');
const fixture = (name) => JSON.parse(fs.readFileSync(path.join(DATA, `${name}.json`), 'utf8'));
const SLDS = path.join(ROOT, 'node_modules/@salesforce-ux/design-system/assets/styles/salesforce-lightning-design-system.min.css');
const PANEL_CSS = fs.readFileSync(path.join(ROOT, 'force-app/main/default/lwc/bantPanel/bantPanel.css'), 'utf8');

const escapeText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttr = (s) => escapeText(s).replace(/"/g, '&quot;');

/** Serializes a node, descending into shadow roots (the screenshot needs what the user sees). */
function serialize(node) {
    if (node.nodeType === 3) {
        return escapeText(node.textContent);
    }
    if (node.nodeType !== 1) {
        return '';
    }
    const tag = node.tagName.toLowerCase();
    if (tag === 'style' || tag === 'template') {
        return '';
    }
    const attrs = Array.from(node.attributes)
        .map((a) => ` ${a.name}="${escapeAttr(a.value)}"`)
        .join('');
    const children = node.shadowRoot ? node.shadowRoot.childNodes : node.childNodes;
    return `<${tag}${attrs}>${Array.from(children).map(serialize).join('')}</${tag}>`;
}

async function render(recordId, record, task) {
    const element = createElement('c-bant-panel', { is: BantPanel });
    element.recordId = recordId;
    document.body.appendChild(element);
    getRecord.emit(record);
    graphql.emit(task);
    await Promise.resolve();
    const html = serialize(element);
    document.body.removeChild(element); // one panel at a time: emit() reaches every mounted one
    return html;
}

function page(columns) {
    const cells = columns
        .map(
            ({ caption, html }) => `
      <div class="column">
        <p class="caption">${escapeText(caption)}</p>
        ${html}
      </div>`
        )
        .join('');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>bantPanel</title>
<link rel="stylesheet" href="file://${SLDS}">
<style>
  html, body { background: #f3f3f3; }
  body { margin: 0; padding: 16px; font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
  .row { display: flex; gap: 16px; align-items: flex-start; }
  .column { width: 400px; }
  .caption { color: #444; font-size: 12px; margin: 0 0 6px 2px; }
  .slds-card { margin: 0; }
${PANEL_CSS}
</style>
</head>
<body>
  <div class="row">${cells}
  </div>
</body>
</html>
`;
}

it('renders the panel for the screenshot', async () => {
    const poc = await render('006000000000001AAA', fixture('unqualifiedPoc'), fixture('openTask'));
    const snoozed = await render('006000000000002AAA', fixture('snoozed'), fixture('noTask'));
    expect(poc).toContain('POC unqualified');
    expect(poc).toContain('BANT: qualify Budget and Need before the POC starts');
    expect(snoozed).toContain('Snoozed until 20/12/2026');
    fs.mkdirSync(path.join(ROOT, 'build'), { recursive: true });
    fs.writeFileSync(
        path.join(ROOT, 'build/salesforce-panel.html'),
        page([
            { caption: 'An unqualified POC: what is missing, the open task, a snooze that was ignored', html: poc },
            { caption: 'A snoozed deal: until when and why, and what is still missing', html: snoozed }
        ])
    );
});
